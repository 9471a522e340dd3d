/** What a benchmark ran on, recorded with every result. */
import { arch, cpus, platform, release, totalmem } from 'node:os';
import { SWARMBEE_VERSION } from '@swarmbee/core';
import ort from 'onnxruntime-node';

export interface MachineInfo {
  hostname?: string;
  platform: string;
  release: string;
  arch: string;
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  node: string;
  onnxruntime: string;
  swarmbee: string;
}

export function machineInfo(): MachineInfo {
  return {
    platform: platform(),
    release: release(),
    arch: arch(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? 'unknown',
    swarmbee: SWARMBEE_VERSION,
  };
}
