// keel's UI, the annotator's page: ask /ui/data/label/PROJECT/next for a task, show its fields, take the answer
// with the keyboard (1-9: a class; Enter: submit) or the mouse (one click on a class submits it), post it to
// /ui/data/label/PROJECT/annotations with a request id made here (a double click writes once), then load the next
// task without reloading the page. Everything from the store is shown as text (textContent), never as markup.
"use strict";

(function () {
  const root = document.getElementById("label");
  if (!root) return;
  const project = root.dataset.project;
  const kind = root.dataset.kind;
  const shownGuideline = Number(root.dataset.guidelineVersion);
  const base = `/ui/data/label/${encodeURIComponent(project)}`;
  const $ = (id) => document.getElementById(id);
  const choices = Array.from(document.querySelectorAll("#label-choices [data-class]"));
  const byKey = new Map(choices.filter((c) => c.dataset.key).map((c) => [c.dataset.key, c]));

  let task = null;        // the task on screen
  let requestId = null;   // one per task: a retried or doubled submit is the same request
  let busy = false;
  let chosen = null;      // classes: the class picked
  let spans = [];         // spans: {start, end, label} in code points of the text
  let selection = null;   // spans: the last selection inside the text, {start, end} in code points

  function newRequestId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // not a secure context (plain http on another host): the same UUID v4 from getRandomValues
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function error(message) {
    const line = $("label-error");
    line.textContent = message || "";
    line.hidden = !message;
  }

  async function call(path, body) {
    const answer = await fetch(base + path, {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await answer.json(); } catch (e) { /* not JSON */ }
    if (!answer.ok) {
      const message = (data && data.error && data.error.message) || `refused (${answer.status})`;
      throw new Error(message);
    }
    return data;
  }

  function showProgress(progress) {
    if (!progress) { $("label-progress").textContent = ""; $("label-qualification").textContent = ""; return; }
    $("label-progress").textContent = `answered by you: ${progress.answered} · items left: ${progress.left}`;
    const q = progress.qualification;
    const line = $("label-qualification");
    if (!q || !q.total) { line.textContent = ""; return; }
    if (!q.done) line.textContent = `qualification: ${q.answered} of ${q.total}`;
    else line.textContent = q.passed ? `qualified (${q.correct}/${q.total})` : `qualification: ${q.correct}/${q.total} correct`;
  }

  function showState(state, message) {
    task = null;
    $("label-task").hidden = true;
    const box = $("label-state");
    box.dataset.state = state;
    box.textContent = message;
    box.hidden = false;
  }

  function field(list, name, text) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = text;
    list.append(dt, dd);
  }

  function showTask(next) {
    task = next;
    requestId = newRequestId();
    chosen = null; spans = []; selection = null;
    $("label-state").hidden = true;
    $("label-item").textContent = next.item;
    $("label-is-qualification").hidden = !next.qualification;
    const list = $("label-fields");
    list.replaceChildren();
    for (const [name, text] of next.fields) field(list, name, text);
    for (const c of choices) {
      c.classList.remove("on");
      const box = c.querySelector("input[type=checkbox]");
      if (box) box.checked = false;
    }
    const number = $("label-number");
    if (number) number.value = "";
    if (kind === "spans") drawSpans();
    const changed = $("label-guideline-changed");
    changed.hidden = next.guideline_version === shownGuideline;
    changed.textContent = changed.hidden ? "" : `The guideline changed (now version ${next.guideline_version}): reload the page to read it.`;
    $("label-task").hidden = false;
    if (number) number.focus();
  }

  async function loadNext() {
    busy = true;
    try {
      const data = await call("/next");
      showProgress(data.progress);
      if (data.state === "task") showTask(data.task);
      else if (data.state === "done") showState("done", "Nothing left for you in this project. Thank you!");
      else showState(data.state, data.message);
      error("");
    } catch (e) {
      error(e.message);
    } finally {
      busy = false;
    }
  }

  function value() {
    if (kind === "classes") return chosen;
    if (kind === "multilabel") return choices.filter((c) => c.querySelector("input").checked).map((c) => c.dataset.class);
    if (kind === "number") {
      const raw = $("label-number").value.trim();
      return raw === "" ? null : Number(raw);
    }
    return spans.map((s) => ({start: s.start, end: s.end, label: s.label}));
  }

  async function submit() {
    if (!task || busy) return;
    const answer = value();
    if (answer === null || (typeof answer === "number" && !Number.isFinite(answer))) {
      error(kind === "number" ? "type a number first" : "choose a class first");
      return;
    }
    if (kind === "number") {  // the schema's range, said here rather than by a refused request
      const box = $("label-number");
      if ((box.min !== "" && answer < Number(box.min)) || (box.max !== "" && answer > Number(box.max))) {
        error(`a number from ${box.min || "-∞"} to ${box.max || "∞"}, please`);
        return;
      }
    }
    busy = true;
    try {
      await call("/annotations", {item: task.item, value: answer, request_id: requestId});
    } catch (e) {
      error(e.message);
      busy = false;
      return;
    }
    busy = false;
    await loadNext();
  }

  function pick(choice) {
    if (!task) return;
    if (kind === "classes") {
      chosen = choice.dataset.class;
      for (const c of choices) c.classList.toggle("on", c === choice);
    } else if (kind === "multilabel") {
      const box = choice.querySelector("input");
      box.checked = !box.checked;
      choice.classList.toggle("on", box.checked);
    } else if (kind === "spans") {
      addSpan(choice.dataset.class);
    }
  }

  // spans: offsets in code points (as Python counts them), whatever UTF-16 the browser uses underneath --------------

  function classIndex(label) { return Math.max(0, choices.findIndex((c) => c.dataset.class === label)); }

  function codePoints(text) { return Array.from(text || ""); }

  function offsetIn(container, node, offset) {
    const range = document.createRange();
    range.setStart(container, 0);
    range.setEnd(node, offset);
    return codePoints(range.toString()).length;
  }

  function rememberSelection() {
    const text = $("label-text");
    const sel = window.getSelection();
    if (!text || !sel || sel.rangeCount === 0 || sel.isCollapsed) return;
    const range = sel.getRangeAt(0);
    if (!text.contains(range.startContainer) || !text.contains(range.endContainer)) return;
    const start = offsetIn(text, range.startContainer, range.startOffset);
    const end = offsetIn(text, range.endContainer, range.endOffset);
    if (end > start) selection = {start, end};
  }

  function addSpan(label) {
    if (!selection) { error("select some text first, then press a class key"); return; }
    const {start, end} = selection;
    if (!spans.some((s) => s.start === start && s.end === end && s.label === label)) spans.push({start, end, label});
    spans.sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : 1));
    selection = null;
    window.getSelection().removeAllRanges();
    error("");
    drawSpans();
  }

  function drawSpans() {
    const chars = codePoints(task ? task.text : "");
    const text = $("label-text");
    text.replaceChildren();
    const cuts = new Set([0, chars.length]);
    for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
    const points = Array.from(cuts).sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const [from, to] = [points[i], points[i + 1]];
      const piece = chars.slice(from, to).join("");
      const over = spans.filter((s) => s.start <= from && to <= s.end).map((s) => s.label);
      if (!over.length) { text.append(document.createTextNode(piece)); continue; }
      const mark = document.createElement("mark");
      mark.className = `c${classIndex(over[over.length - 1]) % 6}`;  // the class's color (the last span's, nested)
      mark.textContent = piece;
      mark.title = over.join(", ");
      text.append(mark);
    }
    const list = $("label-spans");
    list.replaceChildren();
    spans.forEach((s, i) => {
      const item = document.createElement("li");
      const label = document.createElement("mark");
      label.className = `c${classIndex(s.label) % 6}`;
      label.textContent = s.label;
      const quote = document.createTextNode(` “${chars.slice(s.start, s.end).join("")}” [${s.start}:${s.end}] `);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link remove-span";
      remove.textContent = "remove";
      remove.addEventListener("click", () => { spans.splice(i, 1); drawSpans(); });
      item.append(label, quote, remove);
      list.append(item);
    });
  }

  // wiring ------------------------------------------------------------------------------------------------------------

  for (const c of choices) {
    if (kind === "multilabel") {
      c.querySelector("input").addEventListener("change", (e) => c.classList.toggle("on", e.target.checked));
    } else {
      c.addEventListener("mousedown", (e) => e.preventDefault());  // keep the text selection (spans) and focus
      c.addEventListener("click", () => {
        pick(c);
        if (kind === "classes") submit();  // one click answers
      });
    }
  }
  $("label-submit").addEventListener("click", submit);
  document.addEventListener("selectionchange", rememberSelection);

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || !task) return;
    const typing = event.target instanceof HTMLInputElement && event.target.type !== "checkbox";
    if (event.key === "Enter") {
      event.preventDefault();  // a focused button would click as well
      submit();
      return;
    }
    if (typing) return;  // digits typed into the number box are the number
    const choice = byKey.get(event.key);
    if (choice) { event.preventDefault(); pick(choice); }
  });

  loadNext();
})();
