import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../infra/config.js';
import {
  configFromEnvironment,
  configToEnvironment,
  resourceNames,
  stackSites,
} from '../../shared/resources.js';

describe('the sites of a deployment', () => {
  it('answers for the default site, the producers’ sites and one site per collector entry', () => {
    const config = parseConfig({
      defaultSite: 'main.example',
      sites: 'app.example, api.example',
      collectorSites: 'shop.example,www.shop.example=shop.example,*.blog.example',
    });
    expect(config.settings.defaultSite).toBe('main.example');
    expect(stackSites(config.settings)).toEqual([
      'main.example',
      'app.example',
      'api.example',
      'shop.example',
      'blog.example',
    ]);
  });

  it('travel in the functions’ environment (test/infra/stack.test.ts: every function has it) and read back', () => {
    const config = parseConfig({ defaultSite: 'main.example', sites: 'app.example' });
    const env = configToEnvironment({ names: resourceNames(), settings: config.settings });
    expect(stackSites(configFromEnvironment(env).settings)).toEqual(['main.example', 'app.example']);
  });

  it.each([
    [{ defaultSite: 'Main' }, /defaultSite: Main is not a site id/],
    [{ sites: 'ok.example,a#b' }, /sites: not a site id .*"a#b"/],
    [{ collectorSites: 'shop.example=a/b' }, /collectorSites: not a site id after "="/],
  ])('refuses a site id no key can hold: %j', (context, message) => {
    expect(() => parseConfig(context)).toThrow(message);
  });
});
