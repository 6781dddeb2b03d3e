// Warren dashboard: plain JavaScript over the management API (RabbitMQ's /api shapes),
// charts with uPlot. No framework, no requests outside the broker.
'use strict';
(() => {
  const $ = (sel) => document.querySelector(sel);
  const AUTH_KEY = 'warren-auth';
  /** how many points a chart keeps */
  const MAX_POINTS = 600;

  let auth = sessionStorage.getItem(AUTH_KEY);
  let pollMs = 5000;
  let timer = null;
  let lastHistory = 0;
  const charts = {};
  const selected = { queue: null, exchange: null };
  /** queue key → client-side history of the selected queue */
  let queueSeries = null;

  // ---- API ---------------------------------------------------------------------------------

  class Unauthorised extends Error {}

  async function api(path, init = {}) {
    // XMLHttpRequest: the server then leaves out its basic-auth challenge (no browser login dialog)
    const headers = { authorization: auth ?? '', 'x-requested-with': 'XMLHttpRequest', ...(init.headers ?? {}) };
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      init = { ...init, body: JSON.stringify(init.json) };
    }
    const res = await fetch(`api${path}`, { ...init, headers, cache: 'no-store' });
    if (res.status === 401) throw new Unauthorised((await res.json().catch(() => ({}))).reason ?? 'Login failed');
    const text = await res.text();
    const body = text === '' ? null : JSON.parse(text);
    if (!res.ok) throw new Error(body?.reason ?? `${res.status} ${res.statusText}`);
    return body;
  }

  const enc = encodeURIComponent;
  const fmt = (n) => (typeof n === 'number' ? (Number.isInteger(n) ? n.toLocaleString('en') : n.toFixed(1)) : '');
  const rate = (o, key) => fmt(o?.[`${key}_details`]?.rate ?? 0);

  // ---- login -------------------------------------------------------------------------------

  function showLogin(message = '') {
    stopPolling();
    for (const v of document.querySelectorAll('.view')) v.hidden = true;
    $('#tabs').hidden = true;
    $('#who').hidden = true;
    $('#login-view').hidden = false;
    $('#login-error').textContent = message;
  }

  $('#login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    auth = `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${form.get('username')}:${form.get('password')}`)))}`;
    try {
      await start();
      sessionStorage.setItem(AUTH_KEY, auth);
    } catch (err) {
      auth = null;
      showLogin(err instanceof Unauthorised ? 'Login failed' : String(err.message ?? err));
    }
  });

  $('#logout').addEventListener('click', () => {
    sessionStorage.removeItem(AUTH_KEY);
    auth = null;
    showLogin();
  });

  async function start() {
    const me = await api('/whoami');
    const overview = await api('/overview?columns=node,product_name,product_version');
    $('#user').textContent = `${me.name} (${me.tags.join(', ') || 'no tags'})`;
    $('#node').textContent = `${overview.product_name} ${overview.product_version} on ${overview.node}`;
    $('#login-view').hidden = true;
    $('#tabs').hidden = false;
    $('#who').hidden = false;
    lastHistory = 0;
    for (const k of Object.keys(charts)) delete charts[k];
    for (const el of document.querySelectorAll('.chart')) el.replaceChildren();
    show();
  }

  // ---- views -------------------------------------------------------------------------------

  function currentView() {
    const id = location.hash.slice(1);
    return ['overview', 'connections', 'channels', 'exchanges', 'queues', 'rpc', 'admin'].includes(id) ? id : 'overview';
  }

  function show() {
    const view = currentView();
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== view;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.getAttribute('href') === `#${view}`);
    stopPolling();
    void refresh();
  }

  window.addEventListener('hashchange', () => {
    if (auth !== null && $('#login-view').hidden) show();
  });

  function stopPolling() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  async function refresh() {
    stopPolling(); // one polling loop, also when a form asks for a refresh
    try {
      const view = currentView();
      if (view === 'overview') await refreshOverview();
      else if (view === 'connections') await refreshConnections();
      else if (view === 'channels') await refreshChannels();
      else if (view === 'exchanges') await refreshExchanges();
      else if (view === 'rpc') await refreshRpc();
      else if (view === 'admin') await refreshAdmin();
      else await refreshQueues();
      $('#status').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err instanceof Unauthorised) return showLogin('Your login was refused; log in again.');
      $('#status').textContent = `Update failed: ${err.message ?? err}`;
    }
    timer = setTimeout(refresh, pollMs);
  }

  // ---- charts ------------------------------------------------------------------------------

  const COLORS = ['#f60', '#2e90fa', '#12b76a', '#7a5af8', '#f04438'];

  function chart(id, labels, data) {
    const el = document.getElementById(id);
    el.dataset.points = String(data[0].length);
    if (charts[id] === undefined) {
      charts[id] = new uPlot(
        {
          width: Math.max(300, el.clientWidth - 10),
          height: 200,
          series: [{}, ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, value: (_u, v) => (v == null ? '–' : fmt(v)) }))],
          axes: [{}, { size: 60 }],
          // at least a minute of x axis, so that the first points do not stretch over years
          scales: { x: { time: true, range: (_u, min, max) => (max - min < 60 ? [max - 60, max + 1] : [min, max]) } },
        },
        data,
        el,
      );
    } else {
      charts[id].setData(data);
    }
  }

  function trim(data) {
    const extra = data[0].length - MAX_POINTS;
    if (extra > 0) for (const s of data) s.splice(0, extra);
  }

  // ---- overview ----------------------------------------------------------------------------

  const overviewData = { rates: [[], [], [], [], []], depth: [[], [], []] };

  async function refreshOverview() {
    const [o, h] = await Promise.all([api('/overview'), api(`/warren/history?since=${lastHistory}`)]);
    pollMs = Math.max(1000, Math.min(5000, h.interval));
    const t = o.object_totals;
    $('#t-connections').textContent = fmt(t.connections);
    $('#t-channels').textContent = fmt(t.channels);
    $('#t-queues').textContent = fmt(t.queues);
    $('#t-consumers').textContent = fmt(t.consumers);
    $('#t-ready').textContent = fmt(o.queue_totals.messages_ready);
    $('#t-unacked').textContent = fmt(o.queue_totals.messages_unacknowledged);
    if (lastHistory === 0) {
      overviewData.rates = [[], [], [], [], []];
      overviewData.depth = [[], [], []];
    }
    for (const p of h.points) {
      const x = p.t / 1000;
      const r = overviewData.rates;
      r[0].push(x);
      r[1].push(p.publish);
      r[2].push(p.deliver + p.get);
      r[3].push(p.ack);
      r[4].push(p.confirm);
      const d = overviewData.depth;
      d[0].push(x);
      d[1].push(p.ready);
      d[2].push(p.unacked);
      lastHistory = p.t;
    }
    trim(overviewData.rates);
    trim(overviewData.depth);
    const last = h.points[h.points.length - 1];
    if (last !== undefined) {
      $('#r-publish').textContent = fmt(last.publish);
      $('#r-deliver').textContent = fmt(last.deliver + last.get);
      $('#r-ack').textContent = fmt(last.ack);
      $('#r-confirm').textContent = fmt(last.confirm);
    }
    chart('rates-chart', ['publish', 'deliver', 'ack', 'confirm'], overviewData.rates);
    chart('depth-chart', ['ready', 'unacked'], overviewData.depth);
  }

  // ---- tables ------------------------------------------------------------------------------

  function td(text, cls) {
    const cell = document.createElement('td');
    cell.textContent = text;
    if (cls) cell.className = cls;
    return cell;
  }

  function fill(tableId, rows) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...rows);
  }

  async function refreshConnections() {
    const list = await api('/connections');
    fill(
      'connections-table',
      list.map((c) => {
        const tr = document.createElement('tr');
        tr.dataset.name = c.name;
        const client = c.client_properties?.product ? `${c.client_properties.product} ${c.client_properties.version ?? ''}` : '';
        tr.append(td(c.name), td(c.user), td(c.vhost), td(c.state), td(fmt(c.channels), 'num'), td(client), td(rate(c, 'recv_oct'), 'num'), td(rate(c, 'send_oct'), 'num'));
        const close = document.createElement('button');
        close.type = 'button';
        close.className = 'danger';
        close.textContent = 'Close';
        close.addEventListener('click', async () => {
          if (!confirm(`Close connection ${c.name}?`)) return;
          await api(`/connections/${enc(c.name)}`, { method: 'DELETE', headers: { 'x-reason': 'Closed from the Warren dashboard' } }).catch((err) => alert(err.message));
          void refreshConnections();
        });
        const cell = document.createElement('td');
        cell.append(close);
        tr.append(cell);
        return tr;
      }),
    );
  }

  async function refreshChannels() {
    const list = await api('/channels');
    fill(
      'channels-table',
      list.map((ch) => {
        const tr = document.createElement('tr');
        const mode = [ch.confirm ? 'confirm' : '', ch.transactional ? 'tx' : ''].filter(Boolean).join(' ');
        const ms = ch.message_stats;
        tr.append(
          td(ch.name), td(ch.user), td(ch.vhost), td(mode), td(fmt(ch.prefetch_count || ch.global_prefetch_count)),
          td(fmt(ch.consumer_count), 'num'), td(fmt(ch.messages_unacknowledged), 'num'),
          td(rate(ms, 'publish'), 'num'), td(rate(ms, 'deliver_get'), 'num'), td(rate(ms, 'ack'), 'num'),
        );
        return tr;
      }),
    );
  }

  function features(o) {
    return [o.durable ? 'D' : '', o.auto_delete ? 'AD' : '', o.exclusive ? 'Excl' : '', o.internal ? 'I' : '',
      ...Object.keys(o.arguments ?? {}).map((k) => k.replace(/^x-/, ''))].filter(Boolean).join(' ');
  }

  async function refreshExchanges() {
    const list = await api('/exchanges');
    fill(
      'exchanges-table',
      list.map((x) => {
        const tr = document.createElement('tr');
        tr.className = 'clickable';
        const key = `${x.vhost}\u0000${x.name}`;
        if (selected.exchange === key) tr.classList.add('selected');
        tr.append(td(x.vhost), td(x.name === '' ? '(AMQP default)' : x.name), td(x.type), td(features(x)), td(rate(x.message_stats, 'publish_in'), 'num'), td(rate(x.message_stats, 'publish_out'), 'num'));
        tr.addEventListener('click', () => {
          selected.exchange = key;
          void refreshExchanges();
        });
        return tr;
      }),
    );
    const detail = $('#exchange-detail');
    if (selected.exchange === null) return void (detail.hidden = true);
    const [vhost, name] = selected.exchange.split('\u0000');
    const bindings = name === '' ? [] : await api(`/exchanges/${enc(vhost)}/${enc(name)}/bindings/source`);
    detail.hidden = false;
    $('#exchange-name').textContent = name === '' ? '(AMQP default)' : name;
    fill(
      'exchange-bindings',
      bindings.map((b) => {
        const tr = document.createElement('tr');
        tr.append(td(b.destination), td(b.destination_type), td(b.routing_key), td(JSON.stringify(b.arguments)), actionCell('Unbind', () =>
          api(`/bindings/${enc(vhost)}/e/${enc(b.source)}/${b.destination_type === 'queue' ? 'q' : 'e'}/${enc(b.destination)}/${enc(b.properties_key)}`, { method: 'DELETE' })));
        return tr;
      }),
    );
  }

  async function refreshQueues() {
    const list = await api('/queues');
    fill(
      'queues-table',
      list.map((q) => {
        const tr = document.createElement('tr');
        tr.className = 'clickable';
        tr.dataset.name = q.name;
        const key = `${q.vhost}\u0000${q.name}`;
        if (selected.queue === key) tr.classList.add('selected');
        const ms = q.message_stats;
        tr.append(
          td(q.vhost), td(q.name), td(features(q)), td(fmt(q.messages_ready), 'num messages-ready'), td(fmt(q.messages_unacknowledged), 'num'),
          td(fmt(q.messages), 'num'), td(fmt(q.consumers), 'num'), td(rate(ms, 'publish'), 'num'), td(rate(ms, 'deliver_get'), 'num'), td(rate(ms, 'ack'), 'num'),
        );
        tr.addEventListener('click', () => {
          if (selected.queue !== key) queueSeries = null;
          selected.queue = key;
          void refreshQueues();
        });
        return tr;
      }),
    );
    const detail = $('#queue-detail');
    if (selected.queue === null) return void (detail.hidden = true);
    const [vhost, name] = selected.queue.split('\u0000');
    const q = list.find((x) => x.vhost === vhost && x.name === name);
    if (q === undefined) {
      selected.queue = null;
      detail.hidden = true;
      return;
    }
    detail.hidden = false;
    $('#queue-name').textContent = `${name} (${vhost})`;
    // depth and rates over time, collected while the queue is shown
    queueSeries ??= { depth: [[], [], []], rates: [[], [], [], []] };
    const x = Date.now() / 1000;
    const ms = q.message_stats ?? {};
    queueSeries.depth[0].push(x);
    queueSeries.depth[1].push(q.messages_ready);
    queueSeries.depth[2].push(q.messages_unacknowledged);
    queueSeries.rates[0].push(x);
    queueSeries.rates[1].push(ms.publish_details?.rate ?? 0);
    queueSeries.rates[2].push(ms.deliver_get_details?.rate ?? 0);
    queueSeries.rates[3].push(ms.ack_details?.rate ?? 0);
    trim(queueSeries.depth);
    trim(queueSeries.rates);
    chart('queue-depth-chart', ['ready', 'unacked'], queueSeries.depth);
    chart('queue-rates-chart', ['incoming', 'deliver', 'ack'], queueSeries.rates);
    const bindings = await api(`/queues/${enc(vhost)}/${enc(name)}/bindings`);
    fill(
      'queue-bindings',
      bindings.map((b) => {
        const tr = document.createElement('tr');
        tr.append(td(b.source === '' ? '(AMQP default)' : b.source), td(b.routing_key), td(JSON.stringify(b.arguments)),
          b.source === '' ? td('') : actionCell('Unbind', () => api(`/bindings/${enc(vhost)}/e/${enc(b.source)}/q/${enc(b.destination)}/${enc(b.properties_key)}`, { method: 'DELETE' })));
        return tr;
      }),
    );
    const browsed = await api(`/warren/queues/${enc(vhost)}/${enc(name)}/browse?count=20&truncate=200`);
    fill(
      'queue-browse',
      browsed.items.map((m) => {
        const tr = document.createElement('tr');
        tr.append(td(String(m.position)), td(m.routing_key), td(m.redelivered ? 'yes' : 'no'), td(JSON.stringify(m.properties)), td(m.payload));
        return tr;
      }),
    );
  }

  async function refreshRpc() {
    const list = await api('/warren/rpc');
    const ms = (v) => (v === undefined ? '–' : v.toFixed(v < 10 ? 2 : 0));
    fill(
      'rpc-table',
      list.map((r) => {
        const tr = document.createElement('tr');
        tr.dataset.name = r.name;
        const l = r.latency_ms ?? {};
        tr.append(
          td(r.vhost), td(r.name), td(rate(r, 'requests'), 'num'), td(rate(r, 'replies'), 'num'), td(fmt(r.requests), 'num'),
          td(fmt(r.replies), 'num'), td(fmt(r.unanswered), 'num'), td(ms(l.p50), 'num'), td(ms(l.p90), 'num'), td(ms(l.p99), 'num'), td(ms(l.max), 'num'),
        );
        return tr;
      }),
    );
  }

  // ---- admin: vhosts, users, permissions, policies ------------------------------------------

  function actionCell(label, action) {
    const cell = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'danger';
    b.textContent = label;
    b.addEventListener('click', async () => {
      if (!confirm(`${label}?`)) return;
      try {
        await action();
        $('#action-status').textContent = `${label}: done`;
      } catch (err) {
        alert(err.message ?? err);
      }
      void refresh();
    });
    cell.append(b);
    return cell;
  }

  async function refreshAdmin() {
    const [vhosts, users, permissions, policies] = await Promise.all([api('/vhosts'), api('/users').catch(() => []), api('/permissions').catch(() => []), api('/policies')]);
    fill('vhosts-table', vhosts.map((v) => {
      const tr = document.createElement('tr');
      tr.append(td(v.name), td(fmt(v.messages ?? 0), 'num'), actionCell('Delete', () => api(`/vhosts/${enc(v.name)}`, { method: 'DELETE' })));
      return tr;
    }));
    fill('users-table', users.map((u) => {
      const tr = document.createElement('tr');
      tr.append(td(u.name), td(u.tags.join(', ')), actionCell('Delete', () => api(`/users/${enc(u.name)}`, { method: 'DELETE' })));
      return tr;
    }));
    fill('permissions-table', permissions.map((p) => {
      const tr = document.createElement('tr');
      tr.append(td(p.user), td(p.vhost), td(p.configure), td(p.write), td(p.read), actionCell('Clear', () => api(`/permissions/${enc(p.vhost)}/${enc(p.user)}`, { method: 'DELETE' })));
      return tr;
    }));
    fill('policies-table', policies.map((p) => {
      const tr = document.createElement('tr');
      tr.append(td(p.vhost), td(p.name), td(p.pattern), td(p['apply-to']), td(JSON.stringify(p.definition)), td(String(p.priority), 'num'),
        actionCell('Clear', () => api(`/policies/${enc(p.vhost)}/${enc(p.name)}`, { method: 'DELETE' })));
      return tr;
    }));
  }

  // ---- forms: every change goes through the management API ------------------------------------

  const jsonField = (form, name) => {
    const text = String(form.get(name) ?? '').trim();
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${name} is not JSON`);
    }
  };
  const selectedParts = (key) => (key ?? '\u0000').split('\u0000');

  const OPS = {
    'declare-exchange': (f) => api(`/exchanges/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, { method: 'PUT', json: { type: f.get('type'), durable: f.get('durable') === 'true', arguments: jsonField(f, 'arguments') ?? {} } }),
    publish: (f) => {
      const [vhost, name] = selectedParts(selected.exchange);
      return api(`/exchanges/${enc(vhost)}/${enc(name === '' ? 'amq.default' : name)}/publish`, {
        method: 'POST',
        json: { routing_key: f.get('routing_key') ?? '', payload: f.get('payload') ?? '', payload_encoding: 'string', properties: jsonField(f, 'properties') ?? {} },
      }).then((r) => `routed: ${r.routed}`);
    },
    'declare-queue': (f) => api(`/queues/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, { method: 'PUT', json: { durable: f.get('durable') === 'true', arguments: jsonField(f, 'arguments') ?? {} } }),
    bind: (f) => {
      const [vhost, name] = selectedParts(selected.queue);
      return api(`/bindings/${enc(vhost)}/e/${enc(f.get('source'))}/q/${enc(name)}`, { method: 'POST', json: { routing_key: f.get('routing_key') ?? '', arguments: jsonField(f, 'arguments') ?? {} } });
    },
    'publish-to-queue': (f) => {
      const [vhost, name] = selectedParts(selected.queue);
      return api(`/exchanges/${enc(vhost)}/amq.default/publish`, {
        method: 'POST',
        json: { routing_key: name, payload: f.get('payload') ?? '', payload_encoding: 'string', properties: jsonField(f, 'properties') ?? {} },
      }).then((r) => `routed: ${r.routed}`);
    },
    get: async (f) => {
      const [vhost, name] = selectedParts(selected.queue);
      const got = await api(`/queues/${enc(vhost)}/${enc(name)}/get`, { method: 'POST', json: { count: Number(f.get('count') || 1), ackmode: f.get('ackmode'), encoding: 'auto', truncate: 50000 } });
      $('#queue-got').textContent = got.length === 0 ? 'Queue is empty' : JSON.stringify(got, null, 2);
      return `${got.length} message(s)`;
    },
    'add-vhost': (f) => api(`/vhosts/${enc(f.get('name'))}`, { method: 'PUT', json: { description: f.get('description') ?? '' } }),
    'add-user': (f) => api(`/users/${enc(f.get('name'))}`, { method: 'PUT', json: { password: f.get('password'), tags: String(f.get('tags') ?? '') } }),
    'set-permissions': (f) => api(`/permissions/${enc(f.get('vhost'))}/${enc(f.get('user'))}`, { method: 'PUT', json: { configure: f.get('configure'), write: f.get('write'), read: f.get('read') } }),
    'set-policy': (f) => api(`/policies/${enc(f.get('vhost'))}/${enc(f.get('name'))}`, {
      method: 'PUT',
      json: { pattern: f.get('pattern'), 'apply-to': f.get('apply-to'), priority: Number(f.get('priority') || 0), definition: jsonField(f, 'definition') },
    }),
  };

  document.addEventListener('submit', async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('op')) return;
    e.preventDefault();
    const op = OPS[form.dataset.op];
    try {
      const result = await op(new FormData(form));
      $('#action-status').textContent = `${form.dataset.op}: ${typeof result === 'string' ? result : 'done'}`;
    } catch (err) {
      $('#action-status').textContent = `${form.dataset.op} failed: ${err.message ?? err}`;
      alert(err.message ?? err);
    }
    void refresh();
  });

  const ACTIONS = {
    'delete-exchange': () => {
      const [vhost, name] = selectedParts(selected.exchange);
      selected.exchange = null;
      return api(`/exchanges/${enc(vhost)}/${enc(name)}`, { method: 'DELETE' });
    },
    'purge-queue': () => {
      const [vhost, name] = selectedParts(selected.queue);
      return api(`/queues/${enc(vhost)}/${enc(name)}/contents`, { method: 'DELETE' });
    },
    'delete-queue': () => {
      const [vhost, name] = selectedParts(selected.queue);
      selected.queue = null;
      return api(`/queues/${enc(vhost)}/${enc(name)}`, { method: 'DELETE' });
    },
  };
  document.addEventListener('click', async (e) => {
    const action = e.target instanceof HTMLElement ? e.target.dataset.action : undefined;
    if (action === undefined || ACTIONS[action] === undefined) return;
    if (!confirm(`${action.replace('-', ' ')}?`)) return;
    try {
      await ACTIONS[action]();
      $('#action-status').textContent = `${action}: done`;
    } catch (err) {
      alert(err.message ?? err);
    }
    void refresh();
  });

  // ---- boot --------------------------------------------------------------------------------

  if (auth === null) showLogin();
  else start().catch(() => showLogin());
})();
