/**
 * deploy/k8s: every manifest is a valid Kubernetes object (kubernetes-models'
 * schemas), the swarmbee containers run command lines the CLI accepts, and the
 * pieces fit: Service ports and names, the workers' pod DNS names, the token
 * Secret, the cache volumes, the model volume and the Job that fills it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import t, { type Test } from 'tap';
import {
  checkCommandLine,
  flag,
  hostOf,
  type ParsedCommandLine,
  portOf,
} from './helpers/cli-spec.js';
import {
  NODE_ENV_VARS,
  readRepoFile,
  readYamlDocuments,
  repoPath,
  swarmbeeEnvVars,
} from './helpers/deploy.js';

const DIR = ['deploy', 'k8s'];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Service': Service,
  'v1/Secret': Secret,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
};

const kustomization = readYamlDocuments(...DIR, 'kustomization.yaml')[0] as {
  resources: string[];
  images?: { name: string }[];
};
const files = readdirSync(repoPath(...DIR)).filter(
  (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
);
const objects: (K8sObject & { file: string })[] = files.flatMap((file) =>
  readYamlDocuments(...DIR, file).map((doc) => ({ ...(doc as unknown as K8sObject), file })),
);

function find(kind: string, name: string): K8sObject & { file: string } {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in ${DIR.join('/')}`);
  return found;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
    emptyDir?: object;
  }[];
}

function podSpec(object: K8sObject): PodSpec {
  return (object.spec as { template: { spec: PodSpec } }).template.spec;
}

/** The container's args with `$(VAR)` replaced by a sample of what Kubernetes puts there. */
function expandArgs(container: Container, t: Test): string[] {
  const env = new Map((container.env ?? []).map((e) => [e.name, e]));
  return (container.args ?? []).map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, name: string) => {
      const variable = env.get(name);
      t.ok(variable, `$(${name}) in ${container.name}'s args is defined in its env`);
      const field = variable?.valueFrom?.fieldRef?.fieldPath;
      if (field === 'metadata.name') return 'swarmbee-worker-0';
      if (field === 'metadata.namespace') return 'default';
      return variable?.value ?? 'value';
    }),
  );
}

async function swarmbeeContainers(t: Test) {
  const out: {
    object: K8sObject;
    container: Container;
    pod: PodSpec;
    parsed: ParsedCommandLine;
  }[] = [];
  for (const object of objects.filter(
    (o) => o.kind === 'Deployment' || o.kind === 'StatefulSet' || o.kind === 'Job',
  )) {
    const pod = podSpec(object);
    for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
      if (container.image !== 'swarmbee') continue;
      const { parsed, problems } = await checkCommandLine(expandArgs(container, t));
      t.same(
        problems,
        [],
        `${object.kind}/${object.metadata.name} ${container.name}: swarmbee ${container.args?.join(' ')}`,
      );
      out.push({ object, container, pod, parsed });
    }
  }
  return out;
}

t.test('every manifest is a valid Kubernetes object', async (t) => {
  t.ok(objects.length >= 7, `${objects.length} objects in ${files.join(', ')}`);
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`];
    if (!Model) {
      t.fail(`${object.file}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    t.doesNotThrow(
      () => new Model(object as never).validate(),
      `${object.file}: ${object.kind}/${object.metadata.name}`,
    );
    t.equal(
      object.metadata.labels?.['app.kubernetes.io/part-of'],
      'swarmbee',
      'labelled part-of swarmbee',
    );
  }
});

t.test('kustomization.yaml applies every manifest but the secret example', async (t) => {
  for (const resource of kustomization.resources)
    t.ok(existsSync(repoPath(...DIR, resource)), `${resource} exists`);
  t.same(
    [...kustomization.resources].sort(),
    files.filter((f) => !f.startsWith('secret.')).sort(),
    'all manifests, the secret example excepted (its token is a placeholder)',
  );
  const images = new Set(
    objects
      .flatMap((o) =>
        o.spec?.template ? [...podSpec(o).containers, ...(podSpec(o).initContainers ?? [])] : [],
      )
      .map((c) => c.image),
  );
  t.ok(images.has('swarmbee'));
  t.same(
    kustomization.images?.map((i) => i.name),
    ['swarmbee'],
    'whose image `kustomize edit set image` can point at a registry',
  );
});

t.test(
  'swarmbee containers run command lines the CLI accepts, with the env vars it reads',
  async (t) => {
    const containers = await swarmbeeContainers(t);
    t.same(containers.map((c) => `${c.object.kind}/${c.parsed.command.join(' ')}`).sort(), [
      'Deployment/coordinator',
      'Job/model import llama2c',
      'StatefulSet/worker',
    ]);
    const known = swarmbeeEnvVars();
    for (const { container } of containers) {
      for (const variable of container.env ?? []) {
        if (variable.name.startsWith('SWARMBEE_'))
          t.ok(known.has(variable.name), `swarmbee reads ${variable.name}`);
        else
          t.ok(
            NODE_ENV_VARS.has(variable.name) ||
              container.args?.some((a) => a.includes(`$(${variable.name})`)),
            `${variable.name} is used in ${container.name}'s args`,
          );
      }
    }
  },
);

t.test('the token comes from the Secret, never the command line', async (t) => {
  const secret = find('Secret', 'swarmbee-token');
  t.equal(secret.file, 'secret.example.yaml');
  const data = secret.stringData as Record<string, string>;
  t.match(data.token, /^REPLACE/, 'the example holds a placeholder, not a token');
  for (const { object, container, parsed } of await swarmbeeContainers(t)) {
    if (parsed.command[0] === 'model') continue;
    const token = container.env?.find((e) => e.name === 'SWARMBEE_TOKEN');
    t.same(
      token?.valueFrom?.secretKeyRef,
      { name: 'swarmbee-token', key: 'token' },
      `${object.metadata.name}: SWARMBEE_TOKEN from the Secret`,
    );
    t.notOk(parsed.flags.has('token'), 'not on the command line');
  }
});

t.test(
  'Services: the API and worker ports of the coordinator, the headless one of the workers',
  async (t) => {
    const coordinators = (await swarmbeeContainers(t)).filter(
      (c) => c.parsed.command[0] === 'coordinator',
    );
    const { object: deployment, container, parsed } = coordinators[0]!;
    const service = find('Service', 'swarmbee-coordinator');
    const serviceSpec = service.spec as {
      selector: Record<string, string>;
      ports: { name: string; port: number; targetPort: string }[];
      publishNotReadyAddresses?: boolean;
    };
    const podLabels = (
      deployment.spec as { template: { metadata: { labels: Record<string, string> } } }
    ).template.metadata.labels;
    for (const [key, value] of Object.entries(serviceSpec.selector))
      t.equal(podLabels[key], value, `the Service selects the coordinator pod (${key})`);
    const containerPort = (name: string) =>
      container.ports?.find((p) => p.name === name)?.containerPort;
    const servicePort = (name: string) => serviceSpec.ports.find((p) => p.name === name);
    t.equal(containerPort('api'), portOf(flag(parsed, 'api')!), 'container port api = --api');
    t.equal(
      containerPort('workers'),
      portOf(flag(parsed, 'listen')!),
      'container port workers = --listen',
    );
    t.equal(servicePort('api')?.targetPort, 'api');
    t.equal(servicePort('workers')?.targetPort, 'workers');
    t.equal(
      serviceSpec.publishNotReadyAddresses,
      true,
      'workers reach the coordinator before it is ready (ready = deployed)',
    );
    t.same(
      container.readinessProbe?.httpGet,
      { path: '/healthz', port: 'api' },
      'ready when /healthz answers 200',
    );
    t.ok(
      container.livenessProbe?.tcpSocket,
      'alive while the API port answers (not /healthz: 503 while waiting)',
    );

    const workers = (await swarmbeeContainers(t)).filter((c) => c.parsed.command[0] === 'worker');
    const { object: statefulSet, container: worker, parsed: workerLine } = workers[0]!;
    const join = flag(workerLine, 'join')!;
    t.equal(hostOf(join), service.metadata.name, 'workers join the coordinator Service by name');
    t.equal(portOf(join), servicePort('workers')?.port, "on the Service's worker port");
    const headless = find('Service', (statefulSet.spec as { serviceName: string }).serviceName);
    const headlessSpec = headless.spec as {
      clusterIP: string;
      publishNotReadyAddresses?: boolean;
      ports: { name: string; port: number }[];
    };
    t.equal(headlessSpec.clusterIP, 'None', "the StatefulSet's serviceName is a headless Service");
    t.equal(
      headlessSpec.publishNotReadyAddresses,
      true,
      'whose names resolve before the workers are ready',
    );
    t.equal(
      flag(workerLine, 'advertise'),
      `swarmbee-worker-0.${headless.metadata.name}.default.svc`,
      "each worker advertises its pod's DNS name: $(POD_NAME).<headless service>.$(POD_NAMESPACE).svc",
    );
    t.equal(
      flag(workerLine, 'name'),
      'swarmbee-worker-0',
      'and is named after its pod (stable in a StatefulSet)',
    );
    const dataPort = portOf(flag(workerLine, 'listen')!);
    t.equal(
      worker.ports?.find((p) => p.name === 'data')?.containerPort,
      dataPort,
      'container port data = --listen',
    );
    t.equal(headlessSpec.ports[0]?.port, dataPort);
    t.same(worker.livenessProbe?.exec?.command.slice(0, 2), [
      'node',
      '/app/deploy/healthcheck.mjs',
    ]);
    t.equal(
      worker.livenessProbe?.exec?.command.at(-1),
      `http://127.0.0.1:${dataPort}/`,
      'the liveness probe asks the data port',
    );
  },
);

t.test(
  'volumes: a claim per worker for its cache; the model claim read-only in the coordinator',
  async (t) => {
    const containers = await swarmbeeContainers(t);
    for (const { object, pod } of containers) {
      const volumes = new Set([
        ...(pod.volumes ?? []).map((v) => v.name),
        ...(
          (object.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] })
            .volumeClaimTemplates ?? []
        ).map((v) => v.metadata.name),
      ]);
      for (const mount of [...pod.containers, ...(pod.initContainers ?? [])].flatMap(
        (c) => c.volumeMounts ?? [],
      ))
        t.ok(volumes.has(mount.name), `${object.metadata.name}: volume ${mount.name} is declared`);
      for (const claim of (pod.volumes ?? []).filter((v) => v.persistentVolumeClaim))
        t.equal(
          find('PersistentVolumeClaim', claim.persistentVolumeClaim!.claimName).kind,
          'PersistentVolumeClaim',
        );
    }
    const mountFor = (container: Container, path: string) =>
      container.volumeMounts?.find(
        (m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`),
      );

    const worker = containers.find((c) => c.parsed.command[0] === 'worker')!;
    const cache = mountFor(worker.container, flag(worker.parsed, 'cache-dir')!);
    const templates = (
      worker.object.spec as { volumeClaimTemplates: { metadata: { name: string } }[] }
    ).volumeClaimTemplates;
    t.ok(
      cache && templates.some((v) => v.metadata.name === cache.name),
      "the worker's --cache-dir is on its volumeClaimTemplate",
    );

    const coordinator = containers.find((c) => c.parsed.command[0] === 'coordinator')!;
    const modelDir = flag(coordinator.parsed, 'model')!;
    const modelMount = mountFor(coordinator.container, modelDir);
    t.equal(modelMount?.readOnly, true, 'the coordinator mounts the model read-only');
    const modelVolume = coordinator.pod.volumes?.find((v) => v.name === modelMount?.name);
    t.equal(modelVolume?.persistentVolumeClaim?.claimName, 'swarmbee-models');

    const job = containers.find((c) => c.parsed.command[0] === 'model')!;
    t.equal(flag(job.parsed, 'out'), modelDir, 'the Job imports the model the coordinator serves');
    const jobVolume = job.pod.volumes?.find(
      (v) => v.name === mountFor(job.container, modelDir)?.name,
    );
    t.equal(jobVolume?.persistentVolumeClaim?.claimName, 'swarmbee-models', 'onto the same claim');
    for (const path of [...job.parsed.positionals, flag(job.parsed, 'tokenizer')!])
      t.ok(
        mountFor(job.container, path),
        `${path} is on a volume the download init container fills`,
      );
    const waiting = coordinator.pod.initContainers?.find((c) => c.name === 'wait-for-model');
    t.match(
      waiting?.command?.join(' '),
      `${modelDir}/manifest.json`,
      'the coordinator waits for the model',
    );
  },
);

t.test('containers run as the image user, without privileges', async (t) => {
  for (const object of objects.filter((o) => o.spec?.template)) {
    const pod = podSpec(object) as PodSpec & {
      securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
    };
    t.equal(pod.securityContext?.runAsNonRoot, true, `${object.metadata.name}: runAsNonRoot`);
    t.equal(pod.securityContext?.runAsUser, 1000, "as the image's node user");
    for (const container of [...pod.containers, ...(pod.initContainers ?? [])] as (Container & {
      securityContext?: { allowPrivilegeEscalation?: boolean };
    })[])
      t.equal(
        container.securityContext?.allowPrivilegeEscalation,
        false,
        `${container.name}: no privilege escalation`,
      );
  }
  t.match(readRepoFile('deploy', 'docker', 'Dockerfile'), /^USER node$/m);
});
