// One of Statsig's Node SDKs against an openautotune server, as an application would use it:
// evaluate `count` users, log one event per user, shut down (which flushes the events).
// Usage: node run_node_sdk.js legacy|core SERVER_URL SERVER_KEY AUTOTUNE_ID COUNT EVENT_NAME
// Prints one JSON line: {"ready": bool, "results": [[ruleID, groupName], ...]}.
'use strict';

const [kind, url, key, config, countText, eventName] = process.argv.slice(2);
const count = Number(countText);
const userOf = (i) => ({ userID: `node-${kind}-${i}`, custom: { plan: i % 2 ? 'pro' : 'free' } });

async function legacy() {
  const statsig = require('statsig-node');
  await statsig.initialize(key, { api: `${url}/v1`, disableDiagnostics: true, loggingMaxBufferSize: 1000 });
  const results = [];
  for (let i = 0; i < count; i++) {
    const user = userOf(i);
    const experiment = statsig.getExperimentSync(user, config);
    results.push([experiment.getRuleID(), experiment.getGroupName()]);
    statsig.logEvent(user, eventName, i);
  }
  await statsig.shutdownAsync();
  return results;
}

async function core() {
  const { Statsig, StatsigUser } = require('@statsig/statsig-node-core');
  const statsig = new Statsig(key, {
    specsUrl: `${url}/v2/download_config_specs`,
    logEventUrl: `${url}/v1/log_event`,
    disableCountryLookup: true,
    outputLogLevel: 'error',
  });
  await statsig.initialize();
  const results = [];
  for (let i = 0; i < count; i++) {
    const user = new StatsigUser(userOf(i));
    const experiment = statsig.getExperiment(user, config);
    results.push([experiment.ruleID, experiment.groupName]);
    statsig.logEvent(user, eventName, i);
  }
  await statsig.shutdown();
  return results;
}

(kind === 'legacy' ? legacy() : core()).then(
  (results) => {
    process.stdout.write(JSON.stringify({ results }) + '\n');
    process.exit(0);
  },
  (error) => {
    process.stdout.write(JSON.stringify({ error: String(error && error.stack ? error.stack : error) }) + '\n');
    process.exit(1);
  },
);
