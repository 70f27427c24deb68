// What `import ... from 'sluice:plugin/host@0.1.0'` is under `npm test` (plain Node): the
// gateway is not there, so `send` and `log` throw. Keep them off the paths the tests take.
export function send() {
  throw new Error('send() reaches the gateway only inside it: not under npm test');
}
export function log() {
  throw new Error('log() reaches the gateway only inside it: not under npm test');
}
