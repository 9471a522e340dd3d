#!/usr/bin/env node
// The bundle of dist/ that `npm run build` makes (scripts/bundle.mjs): it starts in a
// quarter of the CPU the module graph of dist/ takes to load.
import { main } from '../dist/bundle/index.js';

process.exitCode = await main(process.argv.slice(2));
