// Building DOM nodes without innerHTML: every text the API returns is set
// as text, never parsed as markup.

/**
 * h('span', {class: 'type', dataset: {id}}, 'text', child…) builds an element.
 * Attributes named on* are refused: handlers are added with addEventListener.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) throw new Error('h: no inline handlers (' + k + ')');
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

/** Runs tasks with at most n at once. */
export function limiter(n) {
  let running = 0;
  const queue = [];
  const next = () => {
    while (running < n && queue.length) {
      const [task, resolve, reject] = queue.shift();
      running++;
      task().then(resolve, reject).finally(() => { running--; next(); });
    }
  };
  return (task) => new Promise((resolve, reject) => { queue.push([task, resolve, reject]); next(); });
}
