import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { buildAsyncApi, buildOpenApi, ttyLogDestination } from '@nqvm/api';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ManagerConfig } from './config.ts';
import { ChangeFeed } from './db/changes.ts';
import { type Database, openDatabase } from './db/client.ts';
import { ListCaches } from './db/list-cache.ts';
import { migrate } from './db/migrate.ts';
import { AlertEvaluator } from './features/alerts/alerts.evaluator.ts';
import { AlertsRepository } from './features/alerts/alerts.repository.ts';
import { alertsRoutes } from './features/alerts/alerts.routes.ts';
import { AlertsService } from './features/alerts/alerts.service.ts';
import { AuthRepository } from './features/auth/auth.repository.ts';
import { authRoutes } from './features/auth/auth.routes.ts';
import { AuthService } from './features/auth/auth.service.ts';
import { DeviceConfigService } from './features/devices/devices.config.ts';
import { deviceHandler } from './features/devices/devices.operations.ts';
import { DevicesRepository } from './features/devices/devices.repository.ts';
import { devicesRoutes } from './features/devices/devices.routes.ts';
import { DevicesService } from './features/devices/devices.service.ts';
import { EventsRepository } from './features/events/events.repository.ts';
import { eventsRoutes } from './features/events/events.routes.ts';
import { EventsService } from './features/events/events.service.ts';
import { FunctionsRepository, readyImageId } from './features/functions/functions.repository.ts';
import { functionsRoutes } from './features/functions/functions.routes.ts';
import { FunctionRunner } from './features/functions/functions.runner.ts';
import { FunctionsService } from './features/functions/functions.service.ts';
import { HostsRepository } from './features/hosts/hosts.repository.ts';
import { hostsRoutes } from './features/hosts/hosts.routes.ts';
import { HostsService } from './features/hosts/hosts.service.ts';
import { JoinTokens } from './features/hosts/join-tokens.ts';
import { systemRunner } from './features/images/images.exec.ts';
import { type ImageRow, ImagesRepository } from './features/images/images.repository.ts';
import { imagesRoutes } from './features/images/images.routes.ts';
import { ImagesService } from './features/images/images.service.ts';
import { ImageStore } from './features/images/images.store.ts';
import { withOciService } from './features/images/oci/oci.service-spec.ts';
import { logsRoutes } from './features/logs/logs.routes.ts';
import { mmdsRoutes } from './features/mmds/mmds.routes.ts';
import { MmdsService } from './features/mmds/mmds.service.ts';
import { HttpObserveAgent, type ObserveAgent } from './features/observe/observe.agent.ts';
import { ObserveRepository } from './features/observe/observe.repository.ts';
import { observeRoutes } from './features/observe/observe.routes.ts';
import { ObserveService } from './features/observe/observe.service.ts';
import { assertComplete } from './features/operations/operations.catalog.ts';
import { OperationsRepository } from './features/operations/operations.repository.ts';
import { operationsRoutes } from './features/operations/operations.routes.ts';
import { OperationsService } from './features/operations/operations.service.ts';
import { OperationWaiter } from './features/operations/operations.waiter.ts';
import { OperationWorker } from './features/operations/operations.worker.ts';
import { ProjectsRepository } from './features/projects/projects.repository.ts';
import { projectsRoutes } from './features/projects/projects.routes.ts';
import { guardOf, resourceGuards } from './features/projects/projects.scope.ts';
import { ProjectsService } from './features/projects/projects.service.ts';
import { QuotasRepository } from './features/quotas/quotas.repository.ts';
import { quotasRoutes } from './features/quotas/quotas.routes.ts';
import { QuotasService } from './features/quotas/quotas.service.ts';
import { installRateLimits } from './features/ratelimit/ratelimit.hook.ts';
import { ProjectLimitOverrides } from './features/ratelimit/ratelimit.overrides.ts';
import { RateLimitRepository } from './features/ratelimit/ratelimit.repository.ts';
import { RateLimiter } from './features/ratelimit/ratelimit.service.ts';
import { snapshotDeleteHandler, snapshotHandler } from './features/snapshots/snapshots.operations.ts';
import { SnapshotsRepository } from './features/snapshots/snapshots.repository.ts';
import { snapshotsRoutes } from './features/snapshots/snapshots.routes.ts';
import { SnapshotsService } from './features/snapshots/snapshots.service.ts';
import { StatsRepository } from './features/stats/stats.repository.ts';
import { statsRoutes } from './features/stats/stats.routes.ts';
import { installHttpMetrics, MetricsRegistry } from './features/system/metrics.ts';
import { TemplatesRepository } from './features/templates/templates.repository.ts';
import { templatesRoutes } from './features/templates/templates.routes.ts';
import { TemplatesService } from './features/templates/templates.service.ts';
import { UsageRepository } from './features/usage/usage.repository.ts';
import { UsageService } from './features/usage/usage.service.ts';
import { UsersRepository } from './features/users/users.repository.ts';
import { usersRoutes } from './features/users/users.routes.ts';
import { UsersService } from './features/users/users.service.ts';
import { type AgentApi, AgentClient, HttpAgentApi } from './features/vms/agent-client.ts';
import { startReconciler } from './features/vms/reconciler.ts';
import { bootHandler, deleteHandler, stopHandler } from './features/vms/vm-operations.ts';
import { VmStateMachine } from './features/vms/vm-state-machine.ts';
import { VmUpdates } from './features/vms/vm-update.ts';
import { VmsRepository } from './features/vms/vms.repository.ts';
import { instantiateRoute, vmsRoutes } from './features/vms/vms.routes.ts';
import { type ImageCatalog, VmsService } from './features/vms/vms.service.ts';
import { webConsole } from './features/web/web.plugin.ts';
import { WebhookDeliverer } from './features/webhooks/webhooks.deliverer.ts';
import { WebhooksRepository } from './features/webhooks/webhooks.repository.ts';
import { webhooksRoutes } from './features/webhooks/webhooks.routes.ts';
import { WebhooksService } from './features/webhooks/webhooks.service.ts';
import { installBrowserGuard } from './http/browser-guard.ts';
import { installInputGuard } from './http/input-guard.ts';
import { bearerOf } from './http/mount.ts';
import type { Authenticator } from './http/principal.ts';
import { frameworkError, installErrorHandling, sendProblem } from './http/problem.ts';
import { installRequestContext } from './http/request-context.ts';
import { PasswordHasher } from './security/passwords.ts';
import { ManagerPki } from './security/pki.ts';
import { SecretBox } from './security/secret-box.ts';
import { UrlGuard } from './security/url-guard.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Services {
  database: Database;
  events: EventsService;
  auth: AuthService;
  hosts: HostsService;
  joinTokens: JoinTokens;
  /** The manager's CA and client certificate for mutual TLS with agents. */
  pki: ManagerPki;
  secrets: SecretBox;
  metrics: MetricsRegistry;
  images: ImagesService;
  templates: TemplatesService;
  vms: VmsService;
  observe: ObserveService;
  /** Runs this manager's share of the durable operations; `idle()` waits for what it runs now. */
  operations: OperationWorker;
  /** Runs function invocations, keeps warm snapshots and pools; `reap()` is its housekeeping pass. */
  functions: FunctionRunner;
}

export interface BuiltApp {
  app: FastifyInstance;
  services: Services;
  /** Set on the very first start when no admin password was configured: print it once. */
  generatedAdminPassword?: string;
}

export interface BuildOptions {
  /** An already-open database (tests); otherwise opened from the config. */
  database?: Database;
  logger?: boolean | object;
  /** How the manager reaches host agents (tests may pass their own). */
  agentApi?: AgentApi;
  /** The client every call to a host agent goes through (tests may pass their own). */
  agentClient?: AgentClient;
  /** Call agents that serve plain HTTP (stand-in agents in tests); real agents are called over mutual TLS only. */
  plainHttpAgents?: boolean;
  /** How the manager reaches host agents for consoles and metrics (tests may pass their own). */
  observeAgent?: ObserveAgent;
  /** scrypt cost as log2(N) (default 17); tests lower it to keep suites fast, the environment cannot. */
  passwordLog2N?: number;
  /** History sampling period; 0 turns the background sampler off (tests drive ticks themselves). */
  metricsSampleIntervalMs?: number;
  /** How often the operation worker looks for due work besides being told (tests may shorten it). */
  operationPollMs?: number;
  /** Leave the operation worker stopped; the caller starts it (`services.operations.start()`) when agents can answer. */
  deferOperations?: boolean;
}

/** Builds the manager (database migrated, features registered) without listening. */
export async function buildApp(config: ManagerConfig, opts: BuildOptions = {}): Promise<BuiltApp> {
  mkdirSync(config.dataDir, { recursive: true });
  const database = opts.database ?? (await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir }));
  await migrate(database);

  const secrets = SecretBox.fromConfig(config.secretKey, config.dataDir);
  const events = new EventsService(new EventsRepository(database.db));
  const passwords = new PasswordHasher(opts.passwordLog2N);
  const auth = new AuthService(new AuthRepository(database.db), {
    sessionTtlHours: config.sessionTtlHours,
    tokenMaxTtlDays: config.tokenMaxTtlDays,
    passwords,
  });
  const users = new UsersService(new UsersRepository(database.db), passwords, events);
  const joinTokens = new JoinTokens(database.db);
  const pki = await ManagerPki.open(database.db, secrets);
  const hosts = new HostsService(new HostsRepository(database.db), secrets, {
    joinTokens,
    pki,
    heartbeatTimeoutS: config.hostHeartbeatTimeoutS,
  });
  const metrics = new MetricsRegistry();
  // URL imports and webhooks reach the same places: never internal ranges or guest networks unless allowed.
  const urlGuard = new UrlGuard({ allow: config.importAllowCidrs, deny: [config.network.cidr] });
  const imagesRepo = new ImagesRepository(database.db);
  const images = new ImagesService(imagesRepo, new ImageStore(join(config.dataDir, 'images')), systemRunner, events, {
    imageRoot: config.imageRoot,
    allowImagePaths: config.allowImagePaths,
    maxUploadBytes: config.maxUploadBytes,
    maxImportBytes: config.maxImportBytes,
    urlGuard,
  });
  await images.start();
  const templates = new TemplatesService(new TemplatesRepository(database.db), images, events);
  images.addUsage(templates);
  const admin = await auth.ensureAdmin(config.adminPassword);
  if (admin.created) await events.record({ actor: 'system', resourceType: 'user', action: 'create_admin' });

  const guards = resourceGuards(database.db);
  const projects = new ProjectsService(new ProjectsRepository(database.db), events);
  const authn: Authenticator = {
    resource: (path) => guardOf(guards, path),
    projectExists: (id) => projects.exists(id),
    user: (token) => auth.authenticate(token),
    host: (id, secret) => hosts.authenticate(id, secret),
    guest: async (id, token) =>
      UUID.test(id) && (await vms.authenticateGuest(id, token)) ? { kind: 'guest', vmId: id } : null,
  };

  const app = Fastify({
    logger: opts.logger ?? {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
      // Readable at a terminal, JSON lines everywhere else.
      stream: ttyLogDestination(),
    },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: 1024 * 1024,
    // Fastify's own refusals (bad URL encoding, over-long path parameters) are problem+json like the rest.
    frameworkErrors: frameworkError,
    routerOptions: { maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  installRequestContext(app);

  const vmsRepo = new VmsRepository(database.db);
  const operationsRepo = new OperationsRepository(database.db);
  const machine = new VmStateMachine(database.db, operationsRepo, events);
  const waiter = new OperationWaiter(operationsRepo);
  const agentClient =
    opts.agentClient ??
    new AgentClient({ tls: (hostId) => pki.agentTls(hostId), allowPlainHttp: opts.plainHttpAgents ?? false });
  app.addHook('onClose', async () => agentClient.close());
  const agentApi = opts.agentApi ?? new HttpAgentApi(agentClient);
  const catalogImage = (img: ImageRow) => ({
    id: img.id,
    kind: img.kind,
    state: img.state,
    sha256: img.sha256,
    size_bytes: Number(img.sizeBytes ?? 0),
    project_id: img.projectId,
    public: img.public,
  });
  const vmImages: ImageCatalog = {
    find: async (id) => {
      const img = await images.row(id).catch(() => undefined);
      return img && catalogImage(img);
    },
    findMany: async (ids) => {
      const rows = await images.rows(ids);
      return new Map([...rows].map(([id, img]) => [id, catalogImage(img)]));
    },
    byReference: async (name, sel) => {
      const img = await images.byReference(name, sel);
      return img && catalogImage(img);
    },
  };
  const vms = new VmsService(
    vmsRepo,
    hosts,
    events,
    vmImages,
    agentApi,
    secrets,
    {
      cpuOvercommit: config.cpuOvercommit,
      memOvercommit: config.memOvercommit,
      stopTimeoutS: config.stopTimeoutS,
      defaultNetwork: { name: 'default', ...config.network },
    },
    machine,
  );
  await vms.init();
  const devicesRepo = new DevicesRepository(database.db);
  const devices = new DevicesService({
    repo: devicesRepo,
    vmsRepo,
    vms,
    hosts,
    events,
    images: vmImages,
    agent: agentClient,
    machine,
    waiter,
  });
  const deviceConfig = new DeviceConfigService(devices.deps, devices);
  vms.useSpecHook((row, spec, ctx) => devices.extendSpec(row, spec, ctx));
  vms.useSpecHook((row, spec) => withOciService((id) => imagesRepo.get(id), row, spec));
  hosts.useAllocations({ byHost: (ids) => vmsRepo.allocationsByHost(ids) });
  images.addUsage({ imageUsers: (id) => vmsRepo.imageUsers(id) });
  const snapshotsRepo = new SnapshotsRepository(database.db);
  const snapshots = new SnapshotsService(
    snapshotsRepo,
    vms,
    templates,
    secrets,
    agentClient,
    operationsRepo,
    machine,
    waiter,
  );
  const quotasRepo = new QuotasRepository(database.db);
  const limitOverrides = new ProjectLimitOverrides(database.db);
  const quotas = new QuotasService(quotasRepo, events, () => limitOverrides.invalidate());
  vms.useQuotaCheck(quotas);
  snapshots.useQuotaCheck(quotas);
  images.useQuotaCheck(quotas);
  const vmOps = { vms, rows: vmsRepo, machine, agent: agentApi };
  // What the snapshot and device operations need: their repository, the VM's row, its host and the agent.
  const hostWork = <R>(repo: R) => ({
    repo,
    vms: vmsRepo,
    target: (hostId: string) => vms.agentTarget(hostId),
    agent: agentClient,
    machine,
  });
  const coldBoot = bootHandler(vmOps, (t, spec) => agentApi.boot(t, spec));
  const worker = new OperationWorker({
    store: operationsRepo,
    // The catalogue is complete or the manager does not start.
    handlers: assertComplete({
      create: coldBoot,
      start: coldBoot,
      restart: coldBoot,
      instantiate: bootHandler(vmOps, snapshots.launchers.instantiate),
      clone: bootHandler(vmOps, snapshots.launchers.clone),
      stop: stopHandler(vmOps),
      delete: deleteHandler(vmOps),
      snapshot: snapshotHandler(hostWork(snapshotsRepo)),
      snapshot_delete: snapshotDeleteHandler(hostWork(snapshotsRepo)),
      device: deviceHandler(hostWork(devicesRepo)),
    }),
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    log: app.log,
  });
  machine.onQueued = () => worker.kick();
  waiter.attach(worker);
  // One process owns an embedded database: what it was running when it died resumes now, not at lease expiry.
  if (database.kind === 'pglite') await operationsRepo.releaseAll(new Date());
  // `nqvm up` starts its local agent after the manager: resumed operations would only find it unreachable.
  if (!opts.deferOperations) worker.start(opts.operationPollMs ?? 1000);
  const stopReconciler = config.reconcilerDisabled
    ? async () => {}
    : startReconciler(
        {
          database,
          repo: vmsRepo,
          vms,
          hosts,
          machine,
          operations: operationsRepo,
          agent: agentApi,
          events,
          log: app.log,
        },
        config.reconcileIntervalMs,
      );
  const observe = new ObserveService(
    new ObserveRepository(database.db),
    vms,
    opts.observeAgent ?? new HttpObserveAgent(agentClient),
    database,
    {
      sampleIntervalMs: opts.metricsSampleIntervalMs ?? config.metricsSampleIntervalMs,
      retentionDays: config.metricsRetentionDays,
    },
    app.log,
  );
  observe.registerGauges(metrics);
  const stopSampler =
    (opts.metricsSampleIntervalMs ?? config.metricsSampleIntervalMs) === 0 ? async () => {} : observe.start();
  installErrorHandling(app);
  installInputGuard(app);
  await app.register(cookie);
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  // After the WebSocket plugin: its onRequest hook marks upgrades, so a refused one has its socket closed.
  installBrowserGuard(app, { allowedOrigins: config.allowedOrigins });
  // Built once: both documents are a pure function of the route tables.
  const openapi = buildOpenApi();
  const asyncapi = buildAsyncApi();
  await app.register(swagger, { mode: 'static', specification: { document: openapi as never } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  if (config.enableMetrics) installHttpMetrics(app, metrics);

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (req, reply) => {
    try {
      await database.ping();
      return { status: 'ready', database: database.kind };
    } catch {
      return sendProblem(reply, req, 503, 'database_unavailable', 'the database is not reachable');
    }
  });
  app.get('/v1/openapi.json', async () => openapi);
  app.get('/v1/asyncapi.json', async () => asyncapi);
  if (config.enableMetrics)
    // VM names, owners and hosts are not for anyone who can reach the port: a user credential unless public.
    app.get('/metrics', async (req, reply) => {
      if (!config.metricsPublic) {
        const token = bearerOf(req);
        if (!token || !(await authn.user(token))) {
          reply.header('www-authenticate', 'Bearer realm="nqvm"');
          return sendProblem(
            reply,
            req,
            401,
            'unauthorized',
            'metrics need a bearer token (or NQVM_METRICS_PUBLIC=true)',
          );
        }
      }
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await metrics.render());
    });

  // Every manager sees every manager's writes: list pages are cached between changes, live events and VM waits follow
  // them. A write answered here drops the cached lists before its answer leaves, so its client reads it back.
  const changes = new ChangeFeed(database, {
    onError: (err) => app.log.warn({ err }, 'change feed lost; list caches off until it is back'),
  });
  const listCaches = new ListCaches(changes);
  app.decorate('listCaches', listCaches);
  app.addHook('onSend', async (req) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') listCaches.invalidateAll();
  });
  const unfollowEvents = events.follow(changes, app.log);
  const webhooksRepo = new WebhooksRepository(database.db);
  const webhooks = new WebhooksService(webhooksRepo, secrets, urlGuard, events);
  const deliverer = new WebhookDeliverer(
    {
      store: webhooksRepo,
      post: (url, body, headers, signal) => urlGuard.post(url, { field: 'url', body, headers, signal }),
      openSecret: (sealed) => secrets.open(sealed),
      owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      log: app.log,
    },
    config.webhooks,
  );
  // Deliveries are written with their events (a trigger), and announced (migration 0023) by any manager.
  const unfollowDeliveries = changes.subscribe((c) => {
    if (c.table === 'webhook_deliveries') deliverer.kick();
  });
  if (database.kind === 'pglite') await webhooksRepo.releaseAll();
  deliverer.start();
  const alertsRepo = new AlertsRepository(database.db);
  const alertEvaluator = new AlertEvaluator(
    alertsRepo,
    {
      intervalMs: config.alertIntervalMs,
      heartbeatTimeoutS: config.hostHeartbeatTimeoutS,
      sampleIntervalS: config.metricsSampleIntervalMs / 1000,
    },
    app.log,
    quotas,
  );
  alertEvaluator.start();
  const functionsRepo = new FunctionsRepository(database.db);
  const functionCalls = new HttpAgentApi(agentClient);
  const functionRunner = new FunctionRunner({
    repo: functionsRepo,
    vms,
    snapshots,
    guest: {
      load: (t, vmId, body) => functionCalls.functionLoad(t, vmId, body),
      invoke: (t, vmId, body) => functionCalls.functionInvoke(t, vmId, body),
    },
    secrets,
    imageId: (name) => readyImageId(database.db, name),
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    log: app.log,
    config: config.functions,
  });
  if (database.kind === 'pglite') await functionRunner.recoverAll();
  functionRunner.start();
  const functions = new FunctionsService(functionsRepo, secrets, events, functionRunner);
  functions.useQuotaCheck(quotas);
  vms.followChanges(changes);
  await changes.start();

  const rateLimiter = new RateLimiter(new RateLimitRepository(database.db), config.rateLimits, {
    overrides: limitOverrides,
    onError: (err) => app.log.warn({ err }, 'rate limit counters unreachable; requests go on uncounted'),
  });
  await app.register(async (v1) => {
    installRateLimits(v1, rateLimiter);
    authRoutes(v1, authn, auth, events);
    usersRoutes(v1, authn, users);
    projectsRoutes(v1, authn, projects);
    hostsRoutes(v1, authn, hosts, joinTokens, events);
    eventsRoutes(v1, authn, events);
    imagesRoutes(v1, authn, images);
    templatesRoutes(v1, authn, templates);
    vmsRoutes(v1, authn, vms, new VmUpdates(vmsRepo, events, vms));
    devicesRoutes(v1, authn, devices, deviceConfig);
    statsRoutes(v1, authn, new StatsRepository(database.db), {
      heartbeatTimeoutS: config.hostHeartbeatTimeoutS,
      cpuOvercommit: config.cpuOvercommit,
      memOvercommit: config.memOvercommit,
    });
    instantiateRoute(v1, authn, vms, templates);
    observeRoutes(v1, authn, observe);
    snapshotsRoutes(v1, authn, snapshots);
    operationsRoutes(v1, authn, new OperationsService(operationsRepo));
    mmdsRoutes(v1, authn, new MmdsService(database.db, vms, agentClient));
    logsRoutes(v1, authn, vms, agentClient);
    webhooksRoutes(v1, authn, webhooks);
    alertsRoutes(v1, authn, new AlertsService(alertsRepo, events));
    quotasRoutes(
      v1,
      authn,
      quotas,
      new UsageService(new UsageRepository(database.db), (id) => quotasRepo.projectExists(id)),
    );
    functionsRoutes(v1, authn, functions);
  });

  await app.register(webConsole);

  app.addHook('onClose', async () => {
    unfollowEvents();
    unfollowDeliveries();
    await alertEvaluator.stop();
    await functionRunner.stop();
    await deliverer.stop();
    await changes.stop();
    await stopReconciler();
    await stopSampler();
    await worker.stop();
    await images.stop();
    if (!opts.database) await database.close();
  });

  return {
    app,
    services: {
      database,
      events,
      auth,
      hosts,
      joinTokens,
      pki,
      secrets,
      metrics,
      images,
      templates,
      vms,
      observe,
      operations: worker,
      functions: functionRunner,
    },
    generatedAdminPassword: admin.generatedPassword,
  };
}
