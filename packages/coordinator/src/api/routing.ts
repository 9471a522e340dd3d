/**
 * Who may call what, decided on the route the router matched — never on the raw URL, which
 * can spell one route many ways (percent-escapes, absolute-form targets, HEAD for GET).
 * Every route declares `config: { access: 'open' | 'guarded' }` (registering one without
 * is a programming error, caught at start). With an API key, a guarded route needs it,
 * and so does any path no route matches: without the key, a path that does not exist
 * answers 401 like one that does, so nobody learns which routes exist. A known path asked
 * with another method answers 405 with an `Allow` header; an unknown one 404.
 */
import { timingSafeEqual } from 'node:crypto';
import { METHODS } from 'node:http';
import { MethodNotAllowedError, NotFoundError, UnauthorizedError } from '@swarmbee/core';
import type { FastifyInstance, HTTPMethods } from 'fastify';

export type RouteAccess = 'open' | 'guarded';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Whether the route needs the API key (when one is set). */
    access?: RouteAccess;
  }
}

/** A route as declared: its path, the methods it serves and who may call it. */
export interface DeclaredRoute {
  url: string;
  methods: readonly string[];
  access: RouteAccess;
}

const declaredRoutes = new WeakMap<FastifyInstance, readonly DeclaredRoute[]>();

/** The routes an API serves (HEAD included where GET is), as declared before sealing. */
export function routesOf(app: FastifyInstance): readonly DeclaredRoute[] {
  return declaredRoutes.get(app) ?? [];
}

/** What {@link guardRoutes} needs to finish once every route is registered. */
export interface RouteGuard {
  /** Adds the 405 routes and the 404 handler; call after the last route. */
  seal(): void;
}

/**
 * Installs the access check and starts recording routes. Call before registering any
 * route, then {@link RouteGuard.seal} after the last one.
 */
export function guardRoutes(app: FastifyInstance, apiKey: string | undefined): RouteGuard {
  // Every method Node's parser accepts reaches the router (CONNECT is a tunnel, not a request).
  for (const method of METHODS)
    if (method !== 'CONNECT' && !app.supportedMethods.includes(method))
      app.addHttpMethod(method, { hasBody: true });
  const routes = new Map<string, { methods: Set<string>; access: RouteAccess }>();
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access !== 'open' && access !== 'guarded')
      throw new Error(`route ${route.url} must declare config.access ('open' or 'guarded')`);
    const entry = routes.get(route.url) ?? { methods: new Set<string>(), access };
    if (entry.access !== access)
      throw new Error(`route ${route.url} is declared both open and guarded`);
    for (const method of [route.method].flat()) entry.methods.add(method);
    routes.set(route.url, entry);
  });
  app.addHook('onRequest', async (request, reply) => {
    // Unmatched routes (404) have no access of their own: they are treated as guarded.
    if (!apiKey || request.routeOptions.config.access === 'open') return;
    if (!keyMatches(request.headers.authorization, apiKey)) {
      void reply.header('www-authenticate', 'Bearer');
      throw new UnauthorizedError('this API needs "Authorization: Bearer <api key>"', {
        param: 'authorization',
      });
    }
  });
  let sealed = false;
  return {
    seal: () => {
      if (sealed) return;
      sealed = true;
      const declared = [...routes].map(([url, { methods, access }]) => ({
        url,
        methods: [...methods].sort(),
        access,
      }));
      declaredRoutes.set(app, declared);
      for (const { url, methods: declaredMethods, access } of declared) {
        const methods = new Set(declaredMethods);
        const allow = declaredMethods.join(', ');
        const others = app.supportedMethods.filter((m) => !methods.has(m)) as HTTPMethods[];
        app.route({
          method: others,
          url,
          config: { access },
          exposeHeadRoute: false,
          handler: async (request, reply) => {
            void reply.header('allow', allow);
            throw new MethodNotAllowedError(`${request.method} is not served here; try ${allow}`);
          },
        });
      }
      app.setNotFoundHandler(async (request) => {
        throw new NotFoundError(`no route ${request.method} ${routePath(request.url)}`);
      });
    },
  };
}

function routePath(url: string): string {
  const path = url.split('?')[0] ?? url;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

function keyMatches(header: string | undefined, key: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const expected = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
