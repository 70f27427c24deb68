// `node --import ./test/register.mjs --test`: resolves the gateway's import for plain Node.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      const host = ${JSON.stringify(new URL('./host.mjs', import.meta.url).href)};
      export async function resolve(specifier, context, next) {
        if (specifier.startsWith('sluice:plugin/host@')) return { url: host, shortCircuit: true };
        return next(specifier, context);
      }`),
);
