/** A handful of lighthouse stories: the tests' training records. */
export const STORIES = [
  'Once upon a time, a girl named Mira lived in a lighthouse. Every night she lit the lamp.',
  'Tuck the gull said caw, caw! The boats saw the light and came home.',
  'The fog rolled in. Mira climbed the steps and the lamp must shine.',
  'A storm came, but the lamp burned bright all night long.',
  'Mira found a crab on the steps and let it go by the rocks.',
  'Ben rowed his blue boat home because he saw the light.',
];
