// The clickledger dashboard and members' portal (docs/DASHBOARD.md). Every page reads and acts
// through the program API (/v1/...) with the session cookie; values from the API are set as
// text, never as HTML.
'use strict';

const session = { current: null };
window.clickledgerCharts = {};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session.current) headers['X-CSRF-Token'] = session.current.csrf;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// An element with attributes and children (strings become text nodes).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function notice(kind, text) {
  const box = document.getElementById('notice');
  if (!box) return;
  box.replaceChildren(el('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text));
}

function status(text) {
  return el('span', { class: `status ${text}` }, text);
}

// A table of rows: columns are [heading, row => cell, numeric?].
function table(id, columns, rows, empty) {
  if (!rows.length) return el('p', { class: 'empty', id }, empty);
  return el('table', { id },
    el('thead', {}, el('tr', {}, columns.map(([heading, , numeric]) => el('th', { class: numeric ? 'number' : null }, heading)))),
    el('tbody', {}, rows.map(row => el('tr', {}, columns.map(([, cell, numeric]) => el('td', { class: numeric ? 'number' : null }, cell(row)))))));
}

function csvLink(path) {
  const separator = path.includes('?') ? '&' : '?';
  return el('a', { href: `${path}${separator}format=csv`, download: '' }, 'Download CSV');
}

const isMember = () => session.current && session.current.scope === 'member';
const isAdmin = () => session.current && session.current.scope === 'admin';

const pages = {
  overview: { title: 'Overview', render: overview },
  offers: { title: 'Offers', render: offers, staff: true },
  promotions: { title: 'Links and codes', render: promotions },
  conversions: { title: 'Conversions', render: conversions, staff: true },
  members: { title: 'Members', render: members, staff: true },
  lines: { title: 'Commission lines', render: lines },
  subscriptions: { title: 'Subscriptions', render: subscriptions },
  bills: { title: 'Bills', render: bills },
  deliveries: { title: 'Deliveries', render: deliveries, staff: true },
};

function currentPage() {
  const name = location.hash.replace(/^#\//, '').split('?')[0] || 'overview';
  return pages[name] ? name : 'overview';
}

async function render() {
  const root = document.getElementById('app');
  if (!session.current) {
    try { session.current = await api('GET', '/ui/session'); } catch (error) { session.current = null; }
  }
  if (!session.current) return root.replaceChildren(signIn());
  const name = currentPage();
  const who = session.current.member ? `member ${session.current.member}` : `${session.current.name} (${session.current.scope})`;
  const links = Object.entries(pages)
    .filter(([, page]) => !(page.staff && isMember()))
    .map(([key, page]) => el('a', { href: `#/${key}`, class: key === name ? 'current' : null, id: `nav-${key}` }, page.title));
  const main = el('main', { id: `page-${name}` }, el('div', { id: 'notice' }));
  root.replaceChildren(
    el('header', {}, el('h1', {}, session.current.program), el('nav', {}, links),
      el('span', { class: 'who', id: 'who' }, who), el('button', { id: 'sign-out', onclick: signOut }, 'Sign out')),
    main);
  try {
    await pages[name].render(main);
  } catch (error) {
    notice('error', error.message);
  }
}

function signIn() {
  const input = el('input', { id: 'key', type: 'password', autocomplete: 'current-password', required: true });
  const problem = el('p', { id: 'sign-in-problem', class: 'notice error', hidden: true });
  const form = el('form', {
    class: 'signin', id: 'sign-in', onsubmit: async event => {
      event.preventDefault();
      try {
        session.current = await api('POST', '/ui/session', { key: input.value });
        location.hash = '#/overview';
        render();
      } catch (error) {
        problem.hidden = false;
        problem.textContent = error.status === 401 ? 'That key is not known.' : error.message;
      }
    },
  }, el('h2', {}, 'Sign in'), el('label', { for: 'key' }, 'API key'), input, problem,
    el('button', { class: 'primary', type: 'submit', id: 'sign-in-button' }, 'Sign in'));
  return form;
}

async function signOut() {
  await api('DELETE', '/ui/session');
  session.current = null;
  render();
}

function chart(id, config) {
  if (window.clickledgerCharts[id]) window.clickledgerCharts[id].destroy();
  const canvas = document.getElementById(id);
  if (!canvas || !window.Chart) return;
  window.clickledgerCharts[id] = new window.Chart(canvas, config);
}

async function overview(main) {
  const interval = new URLSearchParams(location.hash.split('?')[1] || '').get('interval') || 'day';
  const series = (await api('GET', `/v1/reports/timeseries?interval=${interval}&limit=1000`)).items;
  const byMember = (await api('GET', '/v1/reports/summary?by=member&limit=1000')).items;
  const byOffer = (await api('GET', '/v1/reports/summary?by=offer&limit=1000')).items;
  const rejections = (await api('GET', '/v1/reports/rejections?limit=1000')).items;
  const sum = (rows, field) => rows.reduce((total, row) => total + Number(row[field]), 0);
  const money = (rows, field) => sum(rows, field).toFixed(2);
  const top = rows => [...rows].sort((a, b) => Number(b.commission) - Number(a.commission)).slice(0, 5);
  const label = row => new Date(row.start).toLocaleString(undefined,
    interval === 'hour' ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric' });
  main.append(
    el('h2', {}, isMember() ? `Your activity` : 'Overview'),
    el('div', { class: 'toolbar' },
      el('a', { href: '#/overview?interval=day', id: 'by-day' }, 'By day'),
      el('a', { href: '#/overview?interval=hour', id: 'by-hour' }, 'By hour'),
      csvLink(`/v1/reports/timeseries?interval=${interval}`)),
    el('div', { class: 'cards' },
      el('div', { class: 'card wide totals', id: 'totals' },
        ...[['Clicks', sum(series, 'clicks')], ['Unique clicks', sum(series, 'unique_clicks')],
          ['Conversions', sum(series, 'conversions')], ['Revenue', money(series, 'revenue')],
          ['Commission', money(series, 'commission')]]
          .map(([name, value]) => el('div', { class: 'total' }, el('strong', { 'data-total': name }, value), el('span', {}, name)))),
      el('div', { class: 'card wide' }, el('h3', {}, 'Clicks and conversions'), el('canvas', { id: 'chart-activity' })),
      el('div', { class: 'card wide' }, el('h3', {}, 'Revenue and commission'), el('canvas', { id: 'chart-money' })),
      el('div', { class: 'card' }, el('h3', {}, 'Top members'), table('top-members', [
        ['Member', row => row.key], ['Conversions', row => row.conversions, true], ['Commission', row => row.commission, true]],
        top(byMember), 'No activity yet.')),
      el('div', { class: 'card' }, el('h3', {}, 'Top offers'), table('top-offers', [
        ['Offer', row => row.key], ['Conversions', row => row.conversions, true], ['Revenue', row => row.revenue, true]],
        top(byOffer), 'No activity yet.')),
      el('div', { class: 'card' }, el('h3', {}, 'Rejections by reason'), rejections.length
        ? el('canvas', { id: 'chart-rejections' }) : el('p', { class: 'empty' }, 'No rejected conversions.'))));
  // The conversion report: a member's own conversions, or everyone's latest.
  const report = (await api('GET', '/v1/reports/conversions?limit=1000')).items.slice(-50).reverse();
  main.append(el('h3', {}, isMember() ? 'Your conversions' : 'Latest conversions'),
    el('div', { class: 'toolbar' }, csvLink('/v1/reports/conversions')),
    table('conversion-report', [['Order date', row => new Date(row.order_date).toLocaleString()], ['Offer', row => row.offer],
      ['Member', row => row.member], ['Order', row => row.order_id], ['Sale', row => `${row.sale_amount} ${row.currency}`, true],
      ['Commission', row => row.commission, true], ['Status', row => status(row.status)], ['Via', row => row.via]],
    report, 'No conversions yet.'));
  const labels = series.map(label);
  chart('chart-activity', { type: 'line', data: { labels, datasets: [
    { label: 'Clicks', data: series.map(row => row.clicks), borderColor: '#2456d6', tension: .2 },
    { label: 'Conversions', data: series.map(row => row.conversions), borderColor: '#16794c', tension: .2 }] },
    options: { animation: false, responsive: true } });
  chart('chart-money', { type: 'bar', data: { labels, datasets: [
    { label: 'Revenue', data: series.map(row => Number(row.revenue)), backgroundColor: '#9db5ef' },
    { label: 'Commission', data: series.map(row => Number(row.commission)), backgroundColor: '#2456d6' }] },
    options: { animation: false, responsive: true } });
  if (rejections.length) {
    const reasons = {};
    for (const row of rejections) reasons[row.reason] = (reasons[row.reason] || 0) + row.conversions;
    chart('chart-rejections', { type: 'doughnut', data: { labels: Object.keys(reasons),
      datasets: [{ data: Object.values(reasons) }] }, options: { animation: false } });
  }
}

async function conversions(main) {
  const pending = (await api('GET', '/v1/conversions/pending?limit=1000')).items;
  const decide = (order, verdict) => async () => {
    try {
      await api('POST', '/v1/conversions/decisions', { orders: [order], verdict });
      notice('ok', `${order}: ${verdict === 'approve' ? 'approved' : 'rejected'}.`);
      setTimeout(render, 600);
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, 'Conversions waiting for approval'), el('div', { class: 'toolbar' }, csvLink('/v1/conversions/pending')),
    table('pending', [
      ['Order', row => row.order_key], ['Offer', row => row.offer], ['Member', row => row.member],
      ['Commission', row => `${row.commission} ${row.currency}`, true], ['Earned', row => new Date(row.earned_at).toLocaleString()],
      ['', row => isAdmin() ? el('span', {},
        el('button', { class: 'primary', 'data-approve': row.order_key, onclick: decide(row.order_key, 'approve') }, 'Approve'), ' ',
        el('button', { class: 'danger', 'data-reject': row.order_key, onclick: decide(row.order_key, 'reject') }, 'Reject')) : '']],
    pending, 'Nothing waits for approval.'));
  if (isAdmin()) {
    main.append(el('h3', {}, 'Refund an order'), form('refund', [['advertiser', 'Advertiser', { required: true, value: 'acme' }],
      ['order_id', 'Order id', { required: true }], ['amount', 'Amount (empty: in full)', {}]], 'Refund', async values => {
      await api('POST', '/v1/orders/refunds', { advertiser: values.advertiser, order_id: values.order_id, amount: values.amount || undefined });
      notice('ok', `Refund of ${values.order_id} sent: its commission follows in a moment.`);
    }));
  }
}

async function members(main) {
  const waiting = (await api('GET', '/v1/members?status=pending&limit=1000')).items;
  const everyone = (await api('GET', '/v1/members?limit=1000')).items;
  const answer = (id, verdict) => async () => {
    try {
      await api('POST', `/v1/members/${encodeURIComponent(id)}/status`, { status: verdict });
      notice('ok', `${id}: ${verdict}.`);
      render();
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, 'Sign-ups waiting for approval'),
    table('pending-members', [
      ['Member', row => row.id], ['Name', row => row.name], ['Invited by', row => row.parent || ''],
      ['', row => el('span', {},
        el('button', { class: 'primary', 'data-approve-member': row.id, onclick: answer(row.id, 'approved') }, 'Approve'), ' ',
        el('button', { class: 'danger', onclick: answer(row.id, 'denied') }, 'Deny'))]],
    waiting, 'No sign-ups wait.'),
    el('h2', {}, 'Recruiting tree'), tree(everyone),
    el('h2', {}, 'Members'), el('div', { class: 'toolbar' }, csvLink('/v1/members')),
    table('members', [['Member', row => row.id], ['Name', row => row.name], ['Status', row => status(row.status)],
      ['Parent', row => row.parent || '']], everyone, 'No members.'));
}

// Members under their parents, as nested lists.
function tree(members) {
  const children = parent => members.filter(member => (member.parent || null) === parent);
  const branch = parent => {
    const kids = children(parent);
    if (!kids.length) return null;
    return el('ul', {}, kids.map(member => el('li', { 'data-member': member.id }, `${member.id} (${member.name}) `, status(member.status), branch(member.id))));
  };
  return el('div', { class: 'card', id: 'tree' }, branch(null) || el('p', { class: 'empty' }, 'No members.'));
}

async function subscriptions(main) {
  const rows = (await api('GET', '/v1/subscriptions?limit=1000')).items;
  const cancel = key => async () => {
    try {
      await api('POST', `/v1/subscriptions/${encodeURIComponent(key)}/cancel`);
      notice('ok', `${key}: cancelled; no credits fall due after now.`);
      setTimeout(render, 600);
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, isMember() ? 'Your subscriptions' : 'Subscriptions'), el('div', { class: 'toolbar' }, csvLink('/v1/subscriptions')),
    table('subscriptions', [['Order', row => row.order_key], ['Member', row => row.member], ['Offer', row => row.offer],
      ['Recurring amount', row => `${row.recurring_amount} ${row.currency}`, true], ['Rate', row => row.rate, true],
      ['Credits', row => row.credits, true], ['Status', row => status(row.status)],
      ['', row => isAdmin() && row.status === 'active' ? el('button', { 'data-cancel': row.order_key, onclick: cancel(row.order_key) }, 'Cancel') : '']],
    rows, 'No subscriptions.'));
}

async function lines(main) {
  const rows = (await api('GET', '/v1/lines?limit=1000')).items;
  main.append(el('h2', {}, isMember() ? 'Your commission' : 'Commission lines'), el('div', { class: 'toolbar' }, csvLink('/v1/lines')),
    table('lines', [['Earned', row => new Date(row.earned_at).toLocaleString()], ['Member', row => row.member],
      ['Offer', row => row.offer || ''], ['Order', row => row.order_key || ''], ['Tier', row => row.tier, true],
      ['Description', row => row.description], ['Amount', row => `${row.amount} ${row.currency}`, true],
      ['Status', row => status(row.status)]], rows, 'No commission yet.'));
}

async function bills(main) {
  const rows = (await api('GET', '/v1/bills?limit=1000')).items;
  const run = async () => {
    try {
      await api('POST', '/v1/bills/runs', { period_end: new Date().toISOString() });
      notice('ok', 'Bill run sent: bills appear in a moment.');
      setTimeout(render, 800);
    } catch (error) { notice('error', error.message); }
  };
  const paid = id => async () => {
    try {
      await api('POST', `/v1/bills/${encodeURIComponent(id)}/paid`);
      notice('ok', 'Marked paid.');
      setTimeout(render, 600);
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, isMember() ? 'Your bills' : 'Bills'),
    el('div', { class: 'toolbar' }, isAdmin() ? el('button', { class: 'primary', id: 'run-bills', onclick: run }, 'Run bills up to now') : null,
      csvLink('/v1/bills')),
    table('bills', [['Member', row => row.member], ['Period end', row => new Date(row.period_end).toLocaleDateString()],
      ['Lines', row => row.lines, true], ['Total', row => `${row.total} ${row.currency}`, true], ['Status', row => status(row.status)],
      ['', row => isAdmin() && row.status === 'unpaid'
        ? el('button', { 'data-pay': row.id, onclick: paid(row.id) }, 'Mark paid') : '']], rows, 'No bills yet.'));
}

async function deliveries(main) {
  const rows = await api('GET', '/v1/deliveries?limit=200');
  const resend = id => async () => {
    try {
      await api('POST', `/v1/deliveries/${encodeURIComponent(id)}/resend`);
      notice('ok', 'Sent again.');
      setTimeout(render, 800);
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, 'Postbacks and webhooks'), el('div', { class: 'toolbar' }, csvLink('/v1/deliveries')),
    table('deliveries', [['Made', row => new Date(row.created_at).toLocaleString()], ['Event', row => row.kind],
      ['Destination', row => row.destination], ['Attempts', row => row.attempts, true],
      ['Last status', row => row.last_status || row.last_error], ['Latency', row => `${row.last_latency_ms} ms`, true],
      ['Status', row => status(row.status)],
      ['', row => isAdmin() ? el('button', { 'data-resend': row.id, onclick: resend(row.id) }, 'Send again') : '']],
    rows, 'Nothing was delivered yet.'));
}

// A form of labelled inputs; `fields` are [name, label, attributes].
function form(id, fields, submit, onsubmit) {
  const inputs = {};
  const rows = fields.map(([name, label, attributes = {}]) => {
    const input = attributes.options
      ? el('select', { id: `${id}-${name}`, name }, attributes.options.map(option => el('option', { value: option }, option)))
      : el('input', { id: `${id}-${name}`, name, ...attributes });
    inputs[name] = input;
    return el('label', { for: `${id}-${name}` }, label, ' ', input);
  });
  return el('form', {
    id, class: 'card', onsubmit: async event => {
      event.preventDefault();
      const values = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value.trim()]));
      try {
        await onsubmit(values);
      } catch (error) { notice('error', error.message); }
    },
  }, rows, ' ', el('button', { class: 'primary', type: 'submit', id: `${id}-submit` }, submit));
}

const cps = value => ({ type: 'cps', rate: [{ from: 1, value: (Number(value) / 100).toString() }] });

async function offers(main) {
  const all = (await api('GET', '/v1/offers?limit=1000')).items;
  const advertisers = (await api('GET', '/v1/advertisers?limit=1000')).items.map(advertiser => advertiser.id);
  const selected = new URLSearchParams(location.hash.split('?')[1] || '').get('offer');
  const act = (path, body, done) => async () => {
    try {
      await api('POST', path, body);
      notice('ok', done);
      render();
    } catch (error) { notice('error', error.message); }
  };
  main.append(el('h2', {}, 'Offers'), el('div', { class: 'toolbar' }, csvLink('/v1/offers')),
    table('offers', [
      ['Offer', row => el('a', { href: `#/offers?offer=${encodeURIComponent(row.id)}` }, row.id)], ['Name', row => row.name],
      ['Advertiser', row => row.advertiser],
      ['Payout options', row => row.payout_options.map(option => option.id === row.default_payout ? `${option.id} (default)` : option.id).join(', ')],
      ['Status', row => status(row.paused ? 'paused' : 'active')],
      ['', row => isAdmin() ? (row.paused
        ? el('button', { 'data-resume': row.id, onclick: act(`/v1/offers/${encodeURIComponent(row.id)}/resume`, undefined, `${row.id} resumed.`) }, 'Resume')
        : el('button', { 'data-pause': row.id, onclick: act(`/v1/offers/${encodeURIComponent(row.id)}/pause`, undefined, `${row.id} paused.`) }, 'Pause')) : '']],
    all, 'No offers yet.'));
  if (isAdmin()) {
    main.append(el('h3', {}, 'New offer, with two payout options (percent of sales)'), form('new-offer', [
      ['id', 'Id', { required: true, pattern: '[A-Za-z0-9._-]+' }], ['name', 'Name', { required: true }],
      ['advertiser', 'Advertiser', { options: advertisers }], ['url', 'Landing page', { required: true, type: 'url' }],
      ['currency', 'Currency', { value: 'USD', required: true }],
      ['first', 'Default option id', { value: 'standard', required: true }], ['first_rate', 'its %', { value: '10', required: true }],
      ['second', 'Second option id', { value: 'vip', required: true }], ['second_rate', 'its %', { value: '15', required: true }],
    ], 'Create offer', async values => {
      await api('POST', '/v1/offers', {
        id: values.id, name: values.name, advertiser: values.advertiser, url: values.url, currency: values.currency,
        default_payout: values.first,
        payout_options: [
          { id: values.first, name: 'sale', rule: cps(values.first_rate) },
          { id: values.second, name: 'sale', rule: cps(values.second_rate) }],
      });
      notice('ok', `Offer ${values.id} created.`);
      location.hash = `#/offers?offer=${encodeURIComponent(values.id)}`;
    }));
  }
  const offer = all.find(row => row.id === selected);
  if (!offer) return;
  const enrolments = (await api('GET', `/v1/offers/${encodeURIComponent(offer.id)}/enrolments?limit=1000`)).items;
  const history = (await api('GET', `/v1/reports/history?offer=${encodeURIComponent(offer.id)}&limit=1000`)).items;
  main.append(el('h2', { id: 'offer-title' }, `${offer.name} (${offer.id})`),
    el('h3', {}, 'Payout options'),
    table('payout-options', [['Option', row => row.id === offer.default_payout ? `${row.id} (default)` : row.id],
      ['Keyword', row => row.name], ['Rule', row => JSON.stringify(row.rule)], ['Pending', row => row.pending ? 'yes' : 'no']],
    offer.payout_options, 'None.'),
    el('h3', {}, 'Members in this offer'),
    table('enrolments', [['Member', row => row.member], ['Payout option', row => row.payout_option || `${offer.default_payout} (default)`],
      ['Own payout values', row => row.payout_override ? JSON.stringify(row.payout_override) : ''], ['Active', row => row.active ? 'yes' : 'no']],
    enrolments, 'No members yet.'));
  if (isAdmin()) {
    const options = offer.payout_options.map(option => option.id);
    main.append(form('enrol', [['member', 'Member', { required: true }], ['option', 'Payout option', { options }],
      ['rate', 'Own % (optional)', {}]], 'Enrol or move', async values => {
      const known = enrolments.some(row => row.member === values.member);
      const body = { members: [values.member], payout_option: values.option };
      if (known) {
        if (values.rate) body.payout_override = cps(values.rate);
        await api('PATCH', `/v1/offers/${encodeURIComponent(offer.id)}/enrolments`, body);
      } else {
        await api('POST', `/v1/offers/${encodeURIComponent(offer.id)}/enrolments`, body);
        if (values.rate) {
          await api('PATCH', `/v1/offers/${encodeURIComponent(offer.id)}/enrolments`, { members: [values.member], payout_override: cps(values.rate) });
        }
      }
      notice('ok', `${values.member} is in ${offer.id} on ${values.option}.`);
      render();
    }));
  }
  if (isAdmin()) {
    main.append(el('h3', {}, 'Edit'), form('edit-offer', [['name', 'Name', { value: offer.name, required: true }],
      ['url', 'Landing page', { value: offer.url, required: true, type: 'url' }],
      ['default_payout', 'Default payout option', { options: offer.payout_options.map(option => option.id) }]], 'Save', async values => {
      await api('PATCH', `/v1/offers/${encodeURIComponent(offer.id)}`, values);
      notice('ok', `${offer.id} saved.`);
      render();
    }));
    const chosen = document.getElementById('edit-offer-default_payout');
    if (chosen) chosen.value = offer.default_payout;
  }
  main.append(el('h3', {}, 'Update history'),
    table('history', [['When', row => new Date(row.at).toLocaleString()], ['Who', row => row.actor], ['What', row => row.key]],
      history, 'No changes.'));
}

async function promotions(main) {
  const codes = (await api('GET', '/v1/codes?limit=1000')).items;
  const links = (await api('GET', '/v1/links?limit=1000')).items;
  const chosen = name => [...document.querySelectorAll(`input[name=${name}]:checked`)].map(box => box.value);
  const bulk = (kind, active) => async () => {
    const picked = chosen(kind);
    if (!picked.length) return notice('error', 'Tick at least one first.');
    try {
      await api('POST', `/v1/${kind}/activation`, { codes: picked, active });
      notice('ok', `${picked.length} ${active ? 'activated' : 'deactivated'}.`);
      render();
    } catch (error) { notice('error', error.message); }
  };
  const refresh = code => async () => {
    try {
      const refreshed = await api('POST', `/v1/codes/${encodeURIComponent(code)}/refresh`, {});
      notice('ok', `${code} replaced by ${refreshed.new.code}.`);
      render();
    } catch (error) { notice('error', error.message); }
  };
  const dates = row => [row.starts_at, row.ends_at].map(at => at ? new Date(at).toLocaleDateString() : '…').join(' to ');
  main.append(el('h2', {}, 'Promo codes'),
    el('div', { class: 'toolbar' }, isAdmin() ? [el('button', { id: 'codes-on', onclick: bulk('codes', true) }, 'Activate ticked'),
      el('button', { id: 'codes-off', onclick: bulk('codes', false) }, 'Deactivate ticked')] : null, csvLink('/v1/codes')),
    table('codes', [['', row => el('input', { type: 'checkbox', name: 'codes', value: row.code })], ['Code', row => row.code],
      ['Offer', row => row.offer], ['Member', row => row.member], ['Dates', dates], ['Status', row => status(row.active ? 'active' : 'inactive')],
      ['', row => isAdmin() ? el('button', { 'data-refresh': row.code, onclick: refresh(row.code) }, 'Refresh (leaked)') : '']],
    codes, 'No codes yet.'));
  if (isAdmin()) {
    main.append(form('new-code', [['offer', 'Offer', { required: true }], ['member', 'Member', { required: true }],
      ['code', 'Code (optional: made from the handle)', {}]], 'Give a code', async values => {
      const made = await api('POST', '/v1/codes', { offer: values.offer, member: values.member, code: values.code || undefined });
      notice('ok', `${made.code} given to ${made.member}.`);
      render();
    }));
    const day = text => text ? new Date(`${text}T00:00:00Z`).toISOString() : null;
    main.append(form('code-dates', [['code', 'Code', { required: true }], ['starts', 'Active from (UTC day)', { type: 'date' }],
      ['ends', 'Until, not including (UTC day)', { type: 'date' }]], 'Set active dates', async values => {
      await api('PATCH', `/v1/codes/${encodeURIComponent(values.code)}`, { starts_at: day(values.starts), ends_at: day(values.ends) });
      notice('ok', `${values.code}: dates set.`);
      render();
    }));
  }
  main.append(el('h2', {}, 'Tracking links'),
    el('div', { class: 'toolbar' }, isAdmin() ? [el('button', { onclick: bulk('links', true) }, 'Activate ticked'),
      el('button', { onclick: bulk('links', false) }, 'Deactivate ticked')] : null, csvLink('/v1/links')),
    table('links', [['', row => el('input', { type: 'checkbox', name: 'links', value: row.code })], ['Link', row => `/c/${row.code}`],
      ['Offer', row => row.offer], ['Member', row => row.member], ['Deep link', row => row.deep_url || ''],
      ['Status', row => status(row.active ? 'active' : 'inactive')]], links, 'No links yet.'));
  if (isAdmin()) {
    main.append(form('new-link', [['offer', 'Offer', { required: true }], ['member', 'Member', { required: true }],
      ['deep_url', 'Deep link (optional)', { type: 'url' }]], 'Make a link', async values => {
      const made = await api('POST', '/v1/links', { offer: values.offer, member: values.member, deep_url: values.deep_url || undefined });
      notice('ok', `/c/${made.code} made for ${made.member}.`);
      render();
    }));
  }
}

window.addEventListener('hashchange', render);
render();
