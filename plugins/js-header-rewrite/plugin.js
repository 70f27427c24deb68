// `js-header-rewrite`: plugins/header-rewrite in JavaScript, on the Sluice JS SDK
// (plugins/sdk-js). Changes headers on the way to the backend and on the way back.
//
// Settings:
//   {"request":  {"set": {"X-Api-Key": "k"}, "remove": ["Cookie"]},
//    "response": {"set": {"X-Served-By": "sluice"}, "remove": ["Server"]}}
// Both parts optional; any other key is refused. Runs in hooks mode: `onRequest` always,
// `onResponse` only when a `response` part is given, so the gateway makes the backend call
// itself and streams the answer through when there is nothing to change on it.

import { definePlugin } from './sluice.js'; // plugins/sdk-js/sluice.js, copied beside it by the build

const NAME = 'js-header-rewrite';

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function onlyKeys(object, known, where) {
  if (!isObject(object)) throw `${NAME}: ${where} must be an object`;
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) throw `${NAME}: unknown field ${where}.${key}, expected one of ${known.join(', ')}`;
  }
}

/** `{set: {name: value}, remove: [name]}` -> {set: [[name, value]], remove: [name]}, checked. */
function rules(part, where) {
  onlyKeys(part, ['set', 'remove'], where);
  const set = part.set ?? {};
  if (!isObject(set)) throw `${NAME}: ${where}.set must be an object`;
  for (const [name, value] of Object.entries(set)) {
    if (typeof value !== 'string') throw `${NAME}: ${where}.set.${name} must be a string`;
  }
  const remove = part.remove ?? [];
  if (!Array.isArray(remove) || !remove.every((name) => typeof name === 'string')) {
    throw `${NAME}: ${where}.remove must be a list of header names`;
  }
  return { set: Object.entries(set), remove };
}

function apply(message, { set, remove }) {
  for (const name of remove) message.removeHeader(name);
  for (const [name, value] of set) message.setHeader(name, value);
  return message;
}

export const handler = definePlugin({
  init(settings) {
    onlyKeys(settings, ['request', 'response'], 'settings');
    return {
      request: rules(settings.request ?? {}, 'request'),
      response: settings.response == null ? undefined : rules(settings.response, 'response'),
    };
  },

  hooks: (state) => ({ onRequest: true, onResponse: state?.response !== undefined }),

  onRequest: (state, request) => apply(request, state.request),

  onResponse: (state, response) => (state.response ? apply(response, state.response) : response),
});
