// The users view: a paged list, one form to create or update, delete.

import { api, encodePath } from "./api.js";
import { el, guarded, showMessage, Pager } from "./ui.js";

export class UsersView {
  constructor(root) {
    this.root = root;
    this.pager = new Pager(20);
    this.tbody = root.querySelector("#users-body");
    this.pagerBox = root.querySelector("#users-pager");
    this.form = root.querySelector("#user-form");
    this.form.addEventListener("submit", guarded((e) => this.save(e)));
    this.form.querySelector("#user-reset").addEventListener("click", () => this.edit(null));
  }

  show() {
    this.refresh();
  }

  hide() {}

  async refresh() {
    try {
      const body = await api("GET", "/api/v1/users",
        { query: { page_size: this.pager.pageSize, page_token: this.pager.token } });
      this.render(body);
    } catch (err) {
      if (err.status !== 401) showMessage(`users: ${err.status ? err.status + ": " : ""}${err.message}`);
    }
  }

  render(body) {
    const users = body.users || [];
    this.pager.update(body.total, users.length, body.next_page_token);
    const rows = users.map((u) => el("tr", { dataset: { name: u.name } },
      el("td", { "data-label": "Name", class: "path" }, u.name),
      el("td", { "data-label": "Admin" }, u.admin ? el("span", { class: "badge" }, "admin") : "—"),
      el("td", { "data-label": "Push", class: "mono" }, u.push || "—"),
      el("td", { "data-label": "Pull", class: "mono" }, u.pull || "—"),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "ghost", onclick: () => this.edit(u) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: guarded(() => this.remove(u.name)) }, "Delete"))));
    if (!users.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No users.")));
    this.tbody.replaceChildren(...rows);
    this.pagerBox.replaceChildren(this.pager.controls(() => this.refresh()));
  }

  edit(user) {
    const f = this.form.elements;
    f.name.value = user ? user.name : "";
    f.password.value = "";
    f.admin.checked = !!(user && user.admin);
    f.push.value = user ? user.push || "" : "";
    f.pull.value = user ? user.pull || "" : "";
    f.update_password.checked = !user;
    f.name.readOnly = !!user;
    this.form.querySelector("legend").textContent = user ? `Edit ${user.name}` : "New user";
    (user ? f.password : f.name).focus();
  }

  async save(event) {
    event.preventDefault();
    const f = this.form.elements;
    const body = {
      name: f.name.value.trim(),
      password: f.password.value,
      admin: f.admin.checked,
      push: f.push.value.trim(),
      pull: f.pull.value.trim(),
    };
    await api("POST", "/api/v1/users",
      { query: { update_password: f.update_password.checked ? 1 : 0 }, body });
    showMessage(`user ${body.name} saved`, "ok");
    this.edit(null);
    this.refresh();
  }

  async remove(name) {
    if (!confirm(`Delete user ${name}? Their tokens stop working.`)) return;
    await api("DELETE", `/api/v1/users/${encodePath(name)}`);
    showMessage(`user ${name} deleted`, "ok");
    this.refresh();
  }
}
