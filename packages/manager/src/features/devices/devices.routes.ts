import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { DeviceConfigService } from './devices.config.ts';
import type { DevicesService } from './devices.service.ts';

export function devicesRoutes(
  app: FastifyInstance,
  authn: Authenticator,
  devices: DevicesService,
  config: DeviceConfigService,
): void {
  const r = api.vmDevices;
  mount(app, authn, r.listDrives, async ({ params }) => ({ items: await devices.listDrives(params.id) }));
  mount(app, authn, r.createDrive, async ({ params, body, principal }) =>
    devices.createDrive(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.getDrive, async ({ params }) => devices.getDrive(params.id, params.drive_id));
  mount(app, authn, r.updateDrive, async ({ params, body, principal }) =>
    devices.updateDrive(params.id, params.drive_id, body.rate_limiter, actorOf(principal)),
  );
  mount(app, authn, r.deleteDrive, async ({ params, principal }) =>
    devices.deleteDrive(params.id, params.drive_id, actorOf(principal)),
  );
  mount(app, authn, r.listNics, async ({ params }) => ({ items: await devices.listNics(params.id) }));
  mount(app, authn, r.createNic, async ({ params, body, principal }) =>
    devices.createNic(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.getNic, async ({ params }) => devices.getNic(params.id, params.nic_id));
  mount(app, authn, r.updateNic, async ({ params, body, principal }) =>
    devices.updateNic(params.id, params.nic_id, body, actorOf(principal)),
  );
  mount(app, authn, r.deleteNic, async ({ params, principal }) =>
    devices.deleteNic(params.id, params.nic_id, actorOf(principal)),
  );
  mount(app, authn, r.getConfig, async ({ params }) => config.getConfig(params.id));
  mount(app, authn, r.machineConfig, async ({ params, body, principal }) =>
    config.machineConfig(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.cpuConfig, async ({ params, body, principal }) =>
    config.cpuConfig(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.vsock, async ({ params, body, principal }) => config.vsock(params.id, body, actorOf(principal)));
  mount(app, authn, r.entropy, async ({ params, body, principal }) =>
    config.entropy(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.serial, async ({ params, body, principal }) =>
    config.serial(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.logger, async ({ params, body, principal }) =>
    config.logger(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.putBalloon, async ({ params, body, principal }) =>
    config.putBalloon(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.patchBalloon, async ({ params, body, principal }) =>
    config.patchBalloon(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.patchBalloonStats, async ({ params, body, principal }) =>
    config.patchBalloon(params.id, body, actorOf(principal)),
  );
  for (const [def, device] of [
    [r.deleteVsock, 'vsock'],
    [r.deleteEntropy, 'entropy'],
    [r.deleteSerial, 'serial'],
    [r.deleteLogger, 'logger'],
    [r.deleteBalloon, 'balloon'],
  ] as const)
    mount(app, authn, def, async ({ params, principal }) => config.removeDevice(params.id, device, actorOf(principal)));
  mount(app, authn, r.balloonStats, async ({ params }) => config.balloonStats(params.id));
}
