// The runs page (keel/ui/pages/runs.py): remembered columns, toggles that apply at once, select-all for compare.
"use strict";

(function () {
  const root = document.getElementById("runs");
  if (!root) return;
  const storageKey = "keel.runs.columns:" + root.dataset.storageKey;
  const url = new URL(window.location.href);
  const chosen = url.searchParams.getAll("c");

  // Columns are remembered per experiment: a URL that names them is the latest choice; one that does not gets
  // the remembered choice (a redirect, so the URL stays the whole view), else the server's defaults.
  let stored = null;
  try { stored = JSON.parse(window.localStorage.getItem(storageKey) || "null"); } catch (e) { stored = null; }
  if (chosen.length) {
    try { window.localStorage.setItem(storageKey, JSON.stringify(chosen)); } catch (e) { /* storage off */ }
  } else if (Array.isArray(stored) && stored.length && stored.every((c) => typeof c === "string")) {
    stored.forEach((c) => url.searchParams.append("c", c));
    window.location.replace(url.toString());
    return;
  }

  const reset = document.getElementById("runs-columns-reset");
  if (reset) {
    reset.addEventListener("click", () => {
      try { window.localStorage.removeItem(storageKey); } catch (e) { /* storage off */ }
      const plain = new URL(window.location.href);
      plain.searchParams.delete("c");
      window.location.assign(plain.toString());
    });
  }

  // the two toggles (steps and trials, deleted runs) apply as soon as they change
  const filter = document.getElementById("runs-filter");
  document.querySelectorAll(".runs-toggle").forEach((box) => box.addEventListener("change", () => filter.submit()));

  const all = document.getElementById("runs-all");
  const picks = Array.from(document.querySelectorAll(".runs-pick"));
  const button = document.getElementById("runs-compare-button");
  const update = () => { if (button) button.disabled = !picks.some((p) => p.checked); };
  if (all) all.addEventListener("change", () => { picks.forEach((p) => { p.checked = all.checked; }); update(); });
  picks.forEach((p) => p.addEventListener("change", update));
  update();
})();
