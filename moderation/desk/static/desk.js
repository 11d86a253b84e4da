// Keyboard work for the review desk. Everything also works without this script:
// the forms post and the server redirects back.
(function () {
  "use strict";
  var current = -1;

  function cards() { return Array.prototype.slice.call(document.querySelectorAll("article.card:not(.done)")); }
  // Messages go to a fixed toast (role="status"), in view wherever the moderator has scrolled.
  function live(text, kind) {
    var box = document.getElementById("live");
    if (!box) { return; }
    var line = document.createElement("p");
    line.className = "message " + (kind || "info");
    line.textContent = text;  // text only: server messages may quote user input
    box.replaceChildren(line);
  }
  // A message inside the card it is about, where the moderator is looking.
  function cardMessage(card, text, kind) {
    var line = card.querySelector(".card-message");
    if (!line) {
      line = document.createElement("p");
      line.setAttribute("role", "status");
      card.querySelector(".card-head").insertAdjacentElement("afterend", line);
    }
    line.className = "message card-message " + (kind || "info");
    line.textContent = text;
  }
  // keepFocus: mark the card current but leave the focus where it is (in the field or on the button just clicked).
  function focusCard(index, keepFocus) {
    var all = cards();
    if (!all.length) { current = -1; return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (card, i) { card.classList.toggle("current", i === current); });
    if (keepFocus) { return; }
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: "nearest" });
  }
  function currentCard() { var all = cards(); return current >= 0 ? all[current] : null; }
  function selected() { return Array.prototype.slice.call(document.querySelectorAll("input.pick:checked")); }
  // Keys typed into a field are text, never shortcuts (a checkbox or a button takes no text).
  var NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset", "image", "range", "color", "file"];
  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    if (tag === "input") { return NOT_TEXT.indexOf((target.type || "text").toLowerCase()) === -1; }
    return tag === "textarea" || tag === "select" || !!target.isContentEditable;
  }
  function formatted(n) { return Number(n).toLocaleString("en-US"); }

  // Every action on more than one comment asks first, with the count: its button's data-confirm,
  // else its data-confirm-many ("{n}" replaced by the number of comments), else a plain question.
  function question(form, submitter) {
    if (submitter && submitter.dataset.confirm) { return submitter.dataset.confirm; }
    var ids = new FormData(form, submitter).getAll("ids").length;
    if (ids > 1) {
      var many = (submitter && submitter.dataset.confirmMany) || "Decide {n} comments?";
      return many.replace("{n}", formatted(ids));
    }
    return null;
  }

  function busy(form, submitter, on) {
    form.setAttribute("aria-busy", on ? "true" : "false");
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) { button.disabled = on; });
    if (!submitter) { return; }
    if (on) {
      submitter.dataset.idle = submitter.innerHTML;
      submitter.textContent = "Working…";
    } else if (submitter.dataset.idle !== undefined) {
      submitter.innerHTML = submitter.dataset.idle;  // the button's own markup, as the server rendered it
      delete submitter.dataset.idle;
    }
  }

  // The tab counts (and the filter's bulk form) as the server counts them now.
  function refreshCounts() {
    var tabs = document.querySelector("nav.tabs[data-counts]");
    if (!tabs) { return Promise.resolve(); }
    return fetch(tabs.dataset.counts, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) {
        if (!counts) { return; }
        document.querySelectorAll(".count[data-tab]").forEach(function (badge) {
          if (counts[badge.dataset.tab] !== undefined) { badge.textContent = String(counts[badge.dataset.tab]); }
        });
        var filter = document.querySelector("form.filter-bulk");
        if (!filter) { return; }
        var pending = counts.pending || 0, max = parseInt(filter.dataset.max, 10) || pending;
        if (!pending) { filter.hidden = true; return; }
        var target = pending > max ? "the first " + formatted(max) + " of " + formatted(pending) : "all " + formatted(pending);
        var count = filter.querySelector(".filter-count");
        if (count) { count.textContent = formatted(pending); }
        filter.querySelectorAll("button[data-confirm-filter]").forEach(function (button) {
          button.dataset.confirm = button.dataset.confirmFilter.replace("{target}", target);
        });
      })
      .catch(function () {});
  }

  function emptyState() {
    var list = document.querySelector("section.cards");
    if (!list || list.querySelector("article.card, .empty")) { return; }
    var note = document.createElement("p");
    note.className = "empty";
    note.textContent = "Nothing left on this page. ";
    var more = document.createElement("a");
    more.href = window.location.href;
    more.textContent = "Load more comments";
    note.appendChild(more);
    list.appendChild(note);
  }

  function send(form, submitter) {
    var data = new FormData(form, submitter);
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    busy(form, submitter, true);
    if (data.get("scope") === "filter") { live("Deciding the matching comments; this can take a while…", "info"); }
    fetch(action, { method: "POST", body: data, headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (result) {
        busy(form, submitter, false);
        var position = current;
        (result.decided || []).forEach(function (id) {
          var card = document.getElementById("c-" + id);
          if (card && !card.classList.contains("done")) {
            card.classList.add("done");
            var pick = card.querySelector("input.pick");
            if (pick) { pick.checked = false; }
            card.remove();
          }
          document.querySelectorAll(".group").forEach(function (group) {
            if ((group.dataset.ids || "").split(",").indexOf(String(id)) !== -1) { group.remove(); }
          });
        });
        // A comment someone else decided first stays in view, marked with its current status.
        (result.conflicts || []).forEach(function (conflict) {
          var card = document.getElementById("c-" + conflict.id);
          if (!card) { return; }
          card.className = card.className.replace(/\bstatus-\w+/, "status-" + conflict.status);
          card.classList.add("done", "stale");
          card.classList.remove("current");
          var badge = card.querySelector(".badge.status");
          if (badge) { badge.textContent = "already " + conflict.status; }
          var pick = card.querySelector("input.pick");
          if (pick) { pick.checked = false; pick.disabled = true; }
          card.querySelectorAll("form.actions button, form.actions textarea").forEach(function (control) { control.disabled = true; });
          cardMessage(card, conflict.message, "conflict");
        });
        var problems = result.problems || [];
        if (problems.length) { live((result.decided || []).length ? result.message + " " + problems.join(" ") : problems.join(" "), "conflict"); }
        else if (result.message) { live(result.message, "info"); }
        emptyState();
        focusCard(position);
        return refreshCounts();
      })
      .catch(function () {
        busy(form, submitter, false);
        live("That did not go through (the page may be out of date). Reload and try again.", "error");
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
    var ask = question(form, event.submitter);
    if (ask && !window.confirm(ask)) { event.preventDefault(); return; }
    if (!form.classList || !form.classList.contains("js-decide")) { return; }  // posts; the server answers with the page
    event.preventDefault();
    send(form, event.submitter);
  });

  function verdictKey(key) {
    var names = { a: "approve", s: "spam", d: "abuse" };
    var verdict = names[key];
    var button;
    if (selected().length) {
      var bulk = document.getElementById("bulk");
      button = bulk && bulk.querySelector('button[value="' + verdict + '"]');
    } else {
      var card = currentCard();
      button = card && card.querySelector('form.actions button[data-key="' + key + '"]');
    }
    // Through the form's own submit: the same confirmation as a click, and no double decision.
    if (button && !button.disabled) { button.form.requestSubmit(button); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) { return; }
    var help = document.getElementById("help");
    // While a dialog is open, the page behind it takes no keys; '?' still closes the help.
    var open = document.querySelector("dialog[open]");
    if (open) {
      if (event.key === "?" && open === help) { help.close(); event.preventDefault(); }
      return;
    }
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
        if (help) { help.showModal(); }
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
    var control = event.target.closest && event.target.closest("input, textarea, select, button, a, label");
    if (card) { var i = cards().indexOf(card); if (i >= 0) { focusCard(i, !!control); } }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "select-all") {
      document.querySelectorAll("input.pick:not(:disabled)").forEach(function (box) { box.checked = event.target.checked; });
    }
  });

  // On a phone each table row is shown as "label: value" lines (desk.css): the labels are the column headers.
  function labelCells() {
    document.querySelectorAll("table.trail").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.cells, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label") && !cell.hasAttribute("colspan")) { cell.setAttribute("data-label", heads[i]); }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    labelCells();
    if (cards().length) { focusCard(0); }
  });
})();
