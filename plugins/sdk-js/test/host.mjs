// What `import ... from 'sluice:plugin/host@0.2.0'` is under `npm test` (plain Node): the
// gateway is not there, so `send`, `sendHttp2` and `log` throw. Keep them off the paths the tests
// take, or stand in for the gateway: `fake.send = (request) => response`, on the WIT's records
// (`headers` an encoded Uint8Array, `name:value\n` each).
export const fake = { send: undefined, sendHttp2: undefined, log: undefined };

const absent = (name) => {
  throw new Error(`${name}() reaches the gateway only inside it: not under npm test`);
};
export function send(request) {
  return fake.send ? fake.send(request) : absent('send');
}
export function sendHttp2(request) {
  return fake.sendHttp2 ? fake.sendHttp2(request) : absent('sendHttp2');
}
export function log(level, message) {
  return fake.log ? fake.log(level, message) : absent('log');
}
