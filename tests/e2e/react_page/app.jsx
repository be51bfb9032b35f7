// A checkout page as a React shop writes it with Statsig's React bindings: the client is created by
// `useClientAsyncInit`, handed to `StatsigProvider`, and a button reads the autotune with
// `useExperiment` and logs the success event when clicked. Used by tests/e2e/test_react_bindings.py,
// which reads the page's settings from its query string and switches users through `window.switchUser`.
import React from 'react';
import { createRoot } from 'react-dom/client';
import {
  StatsigProvider,
  useClientAsyncInit,
  useExperiment,
  useStatsigClient,
  useStatsigUser,
} from '@statsig/react-bindings';

const settings = new URLSearchParams(window.location.search);

function CheckoutButton({ autotune, eventName }) {
  const experiment = useExperiment(autotune);
  const { user, updateUserAsync } = useStatsigUser();
  const { client } = useStatsigClient();
  // A sign-in switches the user; the test drives it from outside React.
  window.switchUser = (userID) => updateUserAsync({ userID });
  window.flushEvents = () => client.flush();
  return (
    <button
      id="checkout"
      data-user={user.userID}
      data-rule={experiment.ruleID}
      data-group={experiment.groupName ?? ''}
      data-reason={experiment.details.reason}
      data-value={JSON.stringify(experiment.value)}
      onClick={() => client.logEvent(eventName, 1, { page: 'react-checkout' })}
    >
      {experiment.groupName ?? 'Checkout'}
    </button>
  );
}

function App() {
  const { client } = useClientAsyncInit(
    settings.get('key'),
    { userID: settings.get('user') },
    { networkConfig: { api: settings.get('api') } },
  );
  return (
    <StatsigProvider client={client} loadingComponent={<p id="loading">Loading…</p>}>
      <CheckoutButton autotune={settings.get('autotune')} eventName={settings.get('event')} />
    </StatsigProvider>
  );
}

createRoot(document.getElementById('root')).render(<App />);
