// keel's UI, a model's page: promote (move an alias through its gates) and roll back, as JSON posts to
// /ui/actions/models/NAME/aliases/ALIAS. The server checks who may; a refusal is shown with the checks that failed.
// Everything shown is text (textContent), never markup.
"use strict";

(function () {
  const result = document.getElementById("promote-result");

  function show(ok, message, checks) {
    if (!result) { window.alert(message); return; }
    result.replaceChildren();
    result.hidden = false;
    const head = document.createElement("p");
    head.className = ok ? "ok" : "bad";
    head.textContent = message;
    result.appendChild(head);
    if (checks && checks.length) {
      const list = document.createElement("ul");
      for (const check of checks) {
        const item = document.createElement("li");
        item.className = check.passed ? "ok" : "bad";
        const what = check.rule !== undefined
          ? `${check.rule}: ${check.metric} ${check.candidate} (threshold ${check.threshold})`
          : `training data ${check.data}: validation ${check.validation}`;
        item.textContent = `${check.passed ? "passed" : "FAILED"} ${what}`;
        list.appendChild(item);
      }
      result.appendChild(list);
    }
  }

  async function move(model, alias, body) {
    const url = `/ui/actions/models/${encodeURIComponent(model)}/aliases/${encodeURIComponent(alias)}`;
    const answer = await fetch(url, {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await answer.json(); } catch (e) { /* not JSON */ }
    if (answer.ok) {
      const was = data.from_version ? `v${data.from_version}` : "nothing";
      show(true, `${data.model}@${data.alias}: ${was} -> v${data.to_version} by ${data.actor}${data.forced ? " (forced)" : ""}`, data.checks);
      window.setTimeout(() => window.location.reload(), 900);
      return;
    }
    const error = (data && data.error) || {message: `refused (${answer.status})`};
    show(false, error.message, error.details && error.details.checks);
  }

  const form = document.getElementById("promote");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const holders = JSON.parse(form.dataset.holders || "{}");
      const alias = form.elements.alias.value.trim();
      const force = form.elements.force ? form.elements.force.checked : false;
      move(form.dataset.model, alias, {
        version: Number(form.elements.version.value),
        rules: force ? [] : form.elements.rules.value,
        require_valid_data: force ? false : form.elements.require_valid_data.checked,
        force: force,
        reason: form.elements.reason.value,
        expected_from: alias in holders ? holders[alias] : null,  // a stale page is refused, not applied
      });
    });
  }

  for (const button of document.querySelectorAll("button.rollback")) {
    button.addEventListener("click", () => {
      const why = window.prompt(`Roll ${button.dataset.model}@${button.dataset.alias} back to v${button.dataset.to}? Why:`, "");
      if (why === null) return;
      move(button.dataset.model, button.dataset.alias, {rollback: true, expected_from: Number(button.dataset.from), reason: why});
    });
  }
})();
