export * from './client.js';
export * from './plans.js';
export * from './run.js';
export * from './scenario.js';
export * from './timeline.js';
