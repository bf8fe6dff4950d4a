// keel's UI: the little that plain HTML cannot do. No inline script anywhere (the pages' CSP forbids it).
"use strict";

// Sign in: the token goes to /ui/session as JSON (the server refuses form posts); the answer sets an HttpOnly cookie.
(function () {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("login-error");
    const answer = await fetch("/ui/session", {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify({token: form.elements.token.value}),
    });
    if (answer.ok) {
      let home = "/ui/";
      try { home = (await answer.json()).home || home; } catch (e) { /* an older server: no body */ }
      const next = form.dataset.next;
      window.location.assign(next && next !== "/ui/" ? next : home);
      return;
    }
    let message = "sign-in failed";
    try { message = (await answer.json()).error.message; } catch (e) { /* not JSON */ }
    error.textContent = message;  // text, never markup
    error.hidden = false;
  });
})();

(function () {
  const button = document.getElementById("logout");
  if (!button) return;
  button.addEventListener("click", async () => {
    await fetch("/ui/logout", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}", credentials: "same-origin"});
    window.location.assign("/ui/login");
  });
})();
