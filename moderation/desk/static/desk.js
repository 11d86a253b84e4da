// Keyboard work for the review desk. Everything also works without this script:
// the forms post and the server redirects back.
(function () {
  "use strict";
  var current = -1;

  function cards() { return Array.prototype.slice.call(document.querySelectorAll("article.card:not(.done)")); }
  function live(text, kind) {
    var box = document.getElementById("live");
    if (!box) { return; }
    var line = document.createElement("p");
    line.className = "message " + (kind || "info");
    line.textContent = text;  // text only: server messages may quote user input
    box.replaceChildren(line);
  }
  function focusCard(index) {
    var all = cards();
    if (!all.length) { current = -1; return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (card, i) { card.classList.toggle("current", i === current); });
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: "nearest" });
  }
  function currentCard() { var all = cards(); return current >= 0 ? all[current] : null; }
  function selected() { return Array.prototype.slice.call(document.querySelectorAll("input.pick:checked")); }
  function adjustCount(tab, delta) {
    var badge = document.querySelector('.count[data-tab="' + tab + '"]');
    if (badge) { badge.textContent = String(Math.max(0, parseInt(badge.textContent, 10) + delta)); }
  }

  function submit(form, submitter) {
    if (submitter && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) { return; }
    var data = new FormData(form, submitter);
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    fetch(action, { method: "POST", body: data, headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (result) {
        var position = current;
        (result.decided || []).forEach(function (id) {
          var card = document.getElementById("c-" + id);
          if (card && !card.classList.contains("done")) {
            card.classList.add("done");
            var pick = card.querySelector("input.pick");
            if (pick) { pick.checked = false; }
            card.remove();
            adjustCount((card.className.match(/status-(\w+)/) || [])[1], -1);
          }
        });
        (result.decided || []).forEach(function (id) {
          document.querySelectorAll(".group").forEach(function (group) {
            var ids = (group.dataset.ids || "").split(",");
            if (ids.indexOf(String(id)) !== -1) { group.remove(); }
          });
        });
        var problems = result.problems || [];
        if (problems.length) { live(problems.join(" "), "conflict"); }
        else if (result.message) { live(result.message, "info"); }
        focusCard(position);
      })
      .catch(function () {
        live("That did not go through (the page may be out of date). Reload and try again.", "error");
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("js-decide")) { return; }
    event.preventDefault();
    submit(form, event.submitter);
  });

  function verdictKey(key) {
    var names = { a: "approve", s: "spam", d: "abuse" };
    var verdict = names[key];
    if (selected().length) {
      var bulk = document.getElementById("bulk");
      var button = bulk && bulk.querySelector('button[value="' + verdict + '"]');
      if (button) { submit(bulk, button); }
      return;
    }
    var card = currentCard();
    var own = card && card.querySelector('form.actions button[data-key="' + key + '"]');
    if (own) { submit(own.form, own); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") { return; }
    var help = document.getElementById("help");
    switch (event.key) {
      case "j": focusCard(current + 1); break;
      case "k": focusCard(current - 1); break;
      case "a": case "s": case "d": if (current < 0) { focusCard(0); } verdictKey(event.key); break;
      case "x":
        var card = currentCard();
        var pick = card && card.querySelector("input.pick");
        if (pick) { pick.checked = !pick.checked; }
        break;
      case "o":
        var link = currentCard() && currentCard().querySelector("a.id");
        if (link) { window.location.href = link.href; }
        break;
      case "?":
        if (help) { if (help.open) { help.close(); } else { help.showModal(); } }
        break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (event.target.matches && event.target.matches("[data-help]")) {
      var help = document.getElementById("help");
      if (help) { help.showModal(); }
    }
    var card = event.target.closest && event.target.closest("article.card");
    if (card) { var i = cards().indexOf(card); if (i >= 0) { focusCard(i); } }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "select-all") {
      document.querySelectorAll("input.pick").forEach(function (box) { box.checked = event.target.checked; });
    }
  });

  document.addEventListener("DOMContentLoaded", function () { if (cards().length) { focusCard(0); } });
})();
