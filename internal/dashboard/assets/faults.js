// Faults page: inject delays and errors into the services' calls while they run, through
// each instance's fault control (/faults on its admin port, see faults.go and package
// fault). Self-contained: it adds its own link to the navigation and its page to app.js's
// router, and uses app.js's helpers (h, $, api, notice, pages, onStatus, state).
'use strict';
(function () {
  const KINDS = ['unavailable', 'deadline_exceeded', 'internal', 'resource_exhausted', 'aborted',
    'unknown', 'data_loss', 'permission_denied', 'unauthenticated', 'failed_precondition', 'not_found', 'invalid_argument'];

  const nav = $('#nav');
  if (nav && !$('a[data-page="faults"]', nav)) nav.append(h('a', {href: '#/faults', 'data-page': 'faults'}, 'Faults'));

  function describe(r) {
    const parts = [];
    if (r.delay) parts.push(`delay ${r.delay}` + (r.delay_percent < 100 ? ` (${r.delay_percent}%)` : ''));
    if (r.abort) parts.push(`abort ${r.abort} ${r.abort_percent}%`);
    return parts.join(', ');
  }
  function ends(r) {
    if (!r.until) return 'until cleared';
    const s = (new Date(r.until) - Date.now()) / 1000;
    return s > 0 ? `in ${s.toFixed(0)} s` : 'ended';
  }

  pages.faults = function (main) {
    const service = h('select', {name: 'service', id: 'fault-service', required: true});
    const methods = h('datalist', {id: 'fault-methods'});
    const method = h('input', {name: 'method', id: 'fault-method', list: 'fault-methods', required: true, size: 28,
      placeholder: 'payments.Charge, payments.*, *.Charge'});
    const side = h('select', {name: 'side', id: 'fault-side'},
      h('option', {value: ''}, 'served and made'), h('option', {value: 'server'}, 'served'), h('option', {value: 'client'}, 'made'));
    const delay = h('input', {name: 'delay', id: 'fault-delay', type: 'number', min: 0, max: 300000, step: 1, size: 6, placeholder: '0'});
    const delayPct = h('input', {name: 'delay_percent', id: 'fault-delay-percent', type: 'number', min: 0, max: 100, step: 'any', value: 100, size: 4});
    const abort = h('select', {name: 'abort', id: 'fault-abort'}, h('option', {value: ''}, 'no abort'), KINDS.map(k => h('option', {value: k}, k)));
    const abortPct = h('input', {name: 'abort_percent', id: 'fault-abort-percent', type: 'number', min: 0, max: 100, step: 'any', value: 100, size: 4});
    const forS = h('input', {name: 'for', id: 'fault-for', type: 'number', min: 0, max: 604800, step: 1, value: 60, size: 6});
    const form = h('form', {class: 'filters', id: 'fault-form'},
      h('label', {}, 'service', service),
      h('label', {}, 'method', method, methods),
      h('label', {}, 'calls', side),
      h('label', {}, 'delay ms', delay, 'in', delayPct, '%'),
      h('label', {}, 'abort with', abort, 'in', abortPct, '%'),
      h('label', {}, 'for s', forS, h('span', {class: 'muted'}, '(0: until cleared)')),
      h('button', {type: 'submit', id: 'fault-inject'}, 'inject'));
    const list = h('div', {id: 'faults-list'}, h('span', {class: 'muted'}, 'loading…'));
    main.append(
      h('div', {class: 'panel'}, h('h2', {}, 'Inject a fault ',
        h('span', {class: 'muted'}, '(on every running instance of the service; a restarted instance starts without faults)')), form),
      h('div', {class: 'panel'}, h('h2', {}, 'Active faults'), list));

    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      const rule = {method: method.value.trim()};
      if (side.value) rule.side = side.value;
      if (Number(delay.value) > 0) { rule.delay = Number(delay.value) + 'ms'; rule.delay_percent = Number(delayPct.value); }
      if (abort.value) { rule.abort = abort.value; rule.abort_percent = Number(abortPct.value); }
      if (Number(forS.value) > 0) rule.for = Number(forS.value) + 's';
      try {
        await api('api/faults/' + encodeURIComponent(service.value), {method: 'POST',
          headers: {'Content-Type': 'application/json'}, body: JSON.stringify(rule)});
        notice(`fault on ${service.value}: ${rule.method} ${describe(Object.assign({abort_percent: 100, delay_percent: 100}, rule))}`, false);
      } catch (e) {
        notice('fault not set: ' + e.message, true);
      }
      refresh();
    });

    async function remove(svc, r) {
      const q = r ? '?' + new URLSearchParams({method: r.method, side: r.side || ''}) : '';
      try {
        await api('api/faults/' + encodeURIComponent(svc) + q, {method: 'DELETE'});
        notice(r ? `removed ${r.method} from ${svc}` : `cleared every fault of ${svc}`, false);
      } catch (e) {
        notice('not removed: ' + e.message, true);
      }
      refresh();
    }

    let busy = false;
    async function refresh() {
      if (busy) return;
      busy = true;
      try {
        const views = await api('api/faults');
        const rows = [];
        const withRules = new Set();
        for (const v of views) {
          if (v.error) rows.push(h('tr', {}, h('td', {}, v.service), h('td', {class: 'mono'}, v.instance), h('td', {colspan: 5, class: 'error-text'}, v.error)));
          for (const r of v.rules) {
            withRules.add(v.service);
            rows.push(h('tr', {class: 'fault-rule', 'data-service': v.service, 'data-method': r.method},
              h('td', {}, v.service), h('td', {class: 'mono'}, v.instance), h('td', {class: 'mono'}, r.method),
              h('td', {}, r.side || 'both'), h('td', {}, describe(r)), h('td', {}, ends(r)),
              h('td', {}, h('button', {class: 'danger', onclick: () => remove(v.service, r)}, 'remove'))));
          }
        }
        list.replaceChildren(rows.length === 0 ? h('span', {class: 'muted', id: 'faults-none'}, 'no faults') :
          h('table', {}, h('thead', {}, h('tr', {}, ['service', 'instance', 'method', 'calls', 'fault', 'ends', ''].map(c => h('th', {}, c)))),
            h('tbody', {}, rows)));
        for (const svc of withRules) list.append(h('button', {class: 'danger', style: {marginTop: '8px', marginRight: '8px'},
          onclick: () => remove(svc, null)}, `clear ${svc}`));
      } catch (e) {
        list.replaceChildren(h('span', {class: 'error-text'}, 'cannot read faults: ' + e.message));
      } finally {
        busy = false;
      }
    }
    refresh();
    const timer = setInterval(refresh, 2000);
    state.cleanup.push(() => clearInterval(timer));

    onStatus(st => {
      const names = st.system.services.map(s => s.name);
      if (service.options.length !== names.length) {
        const keep = service.value;
        service.replaceChildren(...names.map(n => h('option', {value: n}, n)));
        if (names.includes(keep)) service.value = keep;
      }
      const seen = new Set(st.metrics.filter(m => m.service === service.value).map(m => `${m.service}.${m.method}`));
      if (methods.options.length !== seen.size) methods.replaceChildren(...[...seen].sort().map(m => h('option', {value: m})));
    });
  };

  // app.js routed before this script loaded: route again if the page is this one.
  if (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] === 'faults') route();
})();
