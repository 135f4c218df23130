// Base: what every host gets before any package: the apt proxy, the versions the inventory pins
// (apt's preferences file, written even when empty so a removed pin does not linger) and,
// optionally, the PostgreSQL project's apt repository. (The packages themselves are installed by
// the registry's packages stage, one apt call per host, with what every component asks for.)
import { renderFile } from '../../render/template.js';
import type { Component } from '../types.js';
import { PIN_PRIORITY, PINS_FILE, pinStanzas } from './apt.js';

export const base: Component = {
  name: 'base',
  // Its key signs the PostgreSQL project's repository.
  packages: (inv) => (inv.packages.postgresql_apt_repository ? ['postgresql-common'] : []),
  files({ inv, host, platform }) {
    const ctx = { packages: inv.packages, release: platform.release };
    return [
      ...(inv.packages.apt_proxy ? [renderFile('base', '/etc/apt/apt.conf.d/01pgha-proxy', 'apt-proxy.conf.hbs', ctx, { beforePackages: true })] : []),
      ...(inv.packages.postgresql_apt_repository ? [renderFile('base', '/etc/apt/sources.list.d/pgdg.sources', 'pgdg.sources.hbs', ctx, { beforePackages: true })] : []),
      // A host with no role (a shared repository's former host) gets no packages from pgha: no pins.
      ...(host.roles.size ? [renderFile('base', PINS_FILE, 'pins.pref.hbs', { pins: pinStanzas(inv.packages.versions), priority: PIN_PRIORITY }, { beforePackages: true })] : []),
    ];
  },
};
