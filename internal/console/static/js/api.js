// The public API, as the console calls it: every request carries the
// signed-in API key; nothing here decides anything.

const KEY = 'trellis.console.apiKey';

/** The API key of this tab's session, or "". */
export function storedKey() {
  return sessionStorage.getItem(KEY) || '';
}

export function storeKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

/** An answer that is not 2xx: status, and the API's code and message. */
export class APIError extends Error {
  constructor(status, body) {
    const code = body && (body.code || (body.error && body.error.code) || body.error) || 'http_' + status;
    const message = body && (body.message || body.error_description || (body.errors && body.errors.map((e) => e.field + ': ' + e.code).join('; '))) || '';
    super(code + (message ? ': ' + message : ''));
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export class API {
  /**
   * @param {string} key the API key
   * @param {{onRevision?: (n: number) => void, onUnauthorized?: () => void}} hooks
   */
  constructor(key, hooks = {}) {
    this.key = key;
    this.hooks = hooks;
    /** The organization picked: the routing key of a shard node (X-Trellis-Organization). */
    this.organization = '';
  }

  async request(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + this.key }, cache: 'no-store' };
    if (this.organization) init.headers['X-Trellis-Organization'] = this.organization;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = { message: text }; }
    }
    if (resp.status === 401 && this.hooks.onUnauthorized) this.hooks.onUnauthorized();
    if (!resp.ok) throw new APIError(resp.status, data);
    if (data && typeof data.revision === 'number' && this.hooks.onRevision) this.hooks.onRevision(data.revision);
    return data;
  }

  get(path, query = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const s = q.toString();
    return this.request('GET', s ? path + '?' + s : path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }

  /** data.trellis_data.<path> through the OPA Data API; undefined when absent. */
  async document(...segments) {
    const ans = await this.post('/v1/data/trellis_data/' + segments.map(encodeURIComponent).join('/'), {});
    return ans.result;
  }

  revision() {
    return this.document('revision');
  }
}

/** A resource reference of the native API from "authz_resource_…" or "type:external_id". */
export function resourceRef(text, organizationID) {
  const s = text.trim();
  const i = s.indexOf(':');
  if (i > 0 && !s.startsWith('authz_resource_')) {
    const ref = { type: s.slice(0, i), external_id: s.slice(i + 1) };
    if (organizationID) ref.organization_id = organizationID;
    return ref;
  }
  return { id: s };
}
