// Small DOM helpers shared by the views: element building, the message area,
// number formatting.

// el("button", {class: "x", onclick: fn}, "text", child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let hideTimer = null;

// One visible line for API errors and confirmations; errors stay until the
// next message or a click on it, confirmations fade after a few seconds.
export function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  if (!box) return;
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
  clearTimeout(hideTimer);
  if (kind !== "error") hideTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

export function clearMessage() {
  const box = document.getElementById("message");
  if (box) box.hidden = true;
}

// Wrap an async action so any failure lands in the message area.
export function guarded(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (err) {
      showMessage(err.status ? `${err.status}: ${err.message}` : err.message || String(err));
      return undefined;
    }
  };
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(n) {
  let value = Number(n) || 0;
  let i = 0;
  while (value >= 1024 && i < UNITS.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${UNITS[i]}`;
}

export function formatSince(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  let s = Math.max(0, Math.round((Date.now() - t) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}

// A pager for the list endpoints: {total, next_page_token, items}.
// The API's page token is the key of the last item shown, so "previous" is a
// stack of tokens we came through.
export class Pager {
  constructor(pageSize = 20) {
    this.pageSize = pageSize;
    this.stack = [""];
    this.next = "";
    this.hasMore = false;
  }
  get token() {
    return this.stack[this.stack.length - 1];
  }
  update(total, shown, nextToken) {
    this.next = nextToken;
    this.hasMore = shown === this.pageSize && nextToken && nextToken !== this.token;
    this.total = total;
  }
  forward() {
    if (this.hasMore) this.stack.push(this.next);
  }
  back() {
    if (this.stack.length > 1) this.stack.pop();
  }
  reset() {
    this.stack = [""];
  }
  controls(reload) {
    const page = this.stack.length;
    return el("div", { class: "pager" },
      el("button", { type: "button", class: "ghost", disabled: page === 1,
        onclick: () => { this.back(); reload(); } }, "‹ Previous"),
      el("span", {}, `page ${page} · ${this.total ?? 0} in all`),
      el("button", { type: "button", class: "ghost", disabled: !this.hasMore,
        onclick: () => { this.forward(); reload(); } }, "Next ›"));
  }
}
