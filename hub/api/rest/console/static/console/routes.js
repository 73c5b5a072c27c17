// The routes view: a paged list, one form to create or update, delete.

import { api, encodePath } from "./api.js";
import { el, guarded, showMessage, Pager } from "./ui.js";

export class RoutesView {
  constructor(root) {
    this.root = root;
    this.pager = new Pager(20);
    this.tbody = root.querySelector("#routes-body");
    this.pagerBox = root.querySelector("#routes-pager");
    this.form = root.querySelector("#route-form");
    this.form.addEventListener("submit", guarded((e) => this.save(e)));
    this.form.querySelector("#route-reset").addEventListener("click", () => this.edit(null));
  }

  show() {
    this.refresh();
  }

  hide() {}

  async refresh() {
    try {
      const body = await api("GET", "/api/v1/routes",
        { query: { page_size: this.pager.pageSize, page_token: this.pager.token } });
      this.render(body);
    } catch (err) {
      if (err.status !== 401) showMessage(`routes: ${err.status ? err.status + ": " : ""}${err.message}`);
    }
  }

  render(body) {
    const routes = body.routes || [];
    this.pager.update(body.total, routes.length, body.next_page_token);
    const rows = routes.map((r) => el("tr", { dataset: { pattern: r.pattern } },
      el("td", { "data-label": "Pattern", class: "path" }, r.pattern,
        r.pattern.endsWith("/") ? el("span", { class: "badge", title: "serves every path below it" }, "dir") : null),
      el("td", { "data-label": "Upstream", class: "mono addr" }, r.url),
      el("td", { "data-label": "Keep-alive" }, r.keepalive ? "yes" : "no"),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "ghost", onclick: () => this.edit(r) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: guarded(() => this.remove(r.pattern)) }, "Delete"))));
    if (!routes.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No routes.")));
    this.tbody.replaceChildren(...rows);
    this.pagerBox.replaceChildren(this.pager.controls(() => this.refresh()));
  }

  edit(route) {
    const f = this.form.elements;
    f.pattern.value = route ? route.pattern : "";
    f.url.value = route ? route.url : "";
    f.keepalive.checked = !!(route && route.keepalive);
    this.form.querySelector("legend").textContent = route ? `Edit ${route.pattern}` : "New route";
    (route ? f.url : f.pattern).focus();
  }

  async save(event) {
    event.preventDefault();
    const f = this.form.elements;
    const body = { pattern: f.pattern.value.trim(), url: f.url.value.trim(), keepalive: f.keepalive.checked };
    await api("POST", "/api/v1/routes", { body });
    showMessage(`route ${body.pattern} saved`, "ok");
    this.edit(null);
    this.refresh();
  }

  async remove(pattern) {
    if (!confirm(`Delete route ${pattern}? Running pulls keep going until idle.`)) return;
    const p = pattern.startsWith("/") ? pattern : `/${pattern}`;
    await api("DELETE", `/api/v1/routes${encodePath(p)}`);
    showMessage(`route ${pattern} deleted`, "ok");
    this.refresh();
  }
}
