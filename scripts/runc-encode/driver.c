// Encodes text with llama2.c's own run.c `encode` (BOS first, no EOS), for the tokenizer
// fixtures: `driver TOKENIZER VOCAB_SIZE < lines`, one hex-encoded UTF-8 text per input
// line, one line of space-separated token ids per text on stdout. Built by
// scripts/runc-encodings.ts with run.c included as it is (TESTING leaves out its main).
#define TESTING
#include "run.c"

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: driver TOKENIZER VOCAB_SIZE < hex lines\n"); return 2; }
    Tokenizer tokenizer;
    build_tokenizer(&tokenizer, argv[1], atoi(argv[2]));
    size_t capacity = 1 << 16;
    char *line = malloc(capacity);
    size_t length = 0;
    int c;
    while ((c = getchar()) != EOF) {
        if (length + 1 >= capacity) { capacity *= 2; line = realloc(line, capacity); }
        if (c != '\n') { line[length++] = (char)c; continue; }
        size_t bytes = length / 2;
        char *text = malloc(bytes + 1);
        for (size_t i = 0; i < bytes; i++)
            text[i] = (char)(hex_value(line[2 * i]) * 16 + hex_value(line[2 * i + 1]));
        text[bytes] = '\0';
        int *tokens = malloc((bytes + 3) * sizeof(int));
        int n_tokens = 0;
        encode(&tokenizer, text, 1, 0, tokens, &n_tokens);
        for (int i = 0; i < n_tokens; i++) printf(i == 0 ? "%d" : " %d", tokens[i]);
        printf("\n");
        free(tokens);
        free(text);
        length = 0;
    }
    free(line);
    free_tokenizer(&tokenizer);
    return 0;
}
