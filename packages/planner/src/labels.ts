/**
 * DP labels in flat typed arrays: millions of partial pipelines without millions of
 * objects. A label is a partial pipeline's costs so far (three numbers whose meaning
 * depends on the objective) plus its last stage and a link to the label it extends.
 */
export class LabelPool {
  a = new Float64Array(1024);
  b = new Float64Array(1024);
  c = new Float64Array(1024);
  prev = new Int32Array(1024);
  type = new Int32Array(1024);
  start = new Int32Array(1024);
  end = new Int32Array(1024);
  size = 0;

  add(
    a: number,
    b: number,
    c: number,
    prev: number,
    type: number,
    start: number,
    end: number,
  ): number {
    if (this.size === this.a.length) this.grow();
    const id = this.size++;
    this.a[id] = a;
    this.b[id] = b;
    this.c[id] = c;
    this.prev[id] = prev;
    this.type[id] = type;
    this.start[id] = start;
    this.end[id] = end;
    return id;
  }

  /** Stages of the pipeline ending in label `id`, first stage first. */
  stages(id: number): { type: number; start: number; end: number }[] {
    const out: { type: number; start: number; end: number }[] = [];
    for (let at = id; at >= 0; at = this.prev[at]!) {
      out.push({ type: this.type[at]!, start: this.start[at]!, end: this.end[at]! });
    }
    return out.reverse();
  }

  private grow(): void {
    const size = this.a.length * 2;
    const f = (old: Float64Array) => {
      const next = new Float64Array(size);
      next.set(old);
      return next;
    };
    const i = (old: Int32Array) => {
      const next = new Int32Array(size);
      next.set(old);
      return next;
    };
    this.a = f(this.a);
    this.b = f(this.b);
    this.c = f(this.c);
    this.prev = i(this.prev);
    this.type = i(this.type);
    this.start = i(this.start);
    this.end = i(this.end);
  }
}
