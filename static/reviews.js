/* The reviewer's queue and item panel: keyboard, reason box, selection, side panel.
 *
 * Plain script, no framework. The pages work without it (forms post and redirect); this makes
 * triage fast. Every word shown comes from the templates, so that it is translated there.
 */
(function () {
  "use strict";

  // htmx 2 does not swap 4xx answers. The refusals these pages get back (400 a form to correct,
  // 403 not the user's to decide, 409 the item changed or the campaign closed) are partials
  // showing the item as it is now with the message: they are meant to be swapped in.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(400|403|409)", swap: true, error: true },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ];

  var panelRow = null; // the row whose item the side panel shows
  var afterPanelLoad = null; // what to focus once the panel arrives
  var followTimer = null;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr.queue-row"));
  }

  function rowOf(element) {
    return element && element.closest ? element.closest("tr.queue-row") : null;
  }

  function currentRow() {
    return rowOf(document.activeElement) || document.querySelector("tr.queue-row[tabindex='0']");
  }

  function sidePanel() {
    return document.getElementById("side-panel");
  }

  function panelOpen() {
    var panel = sidePanel();
    return !!(panel && panel.classList.contains("open"));
  }

  function say(text) {
    var status = document.getElementById("queue-status");
    if (status && text) status.textContent = text;
  }

  function text(name) {
    var texts = document.getElementById("queue-texts");
    return texts ? texts.getAttribute("data-" + name) : "";
  }

  // Rows: one tab stop for the table, arrows and j/k within it.
  function focusRow(row, follow) {
    if (!row) return;
    rows().forEach(function (other) {
      other.tabIndex = other === row ? 0 : -1;
    });
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    if (follow !== false && panelOpen() && panelRow !== row) {
      // The panel follows the reviewer down the list, once they stop on a row.
      clearTimeout(followTimer);
      followTimer = setTimeout(function () {
        if (currentRow() === row) openPanel(row, "", "row");
      }, 200);
    }
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var here = rowOf(document.activeElement);
    // From outside the list, the first key lands on the row last left (or the first).
    if (!here) return focusRow(currentRow() || all[0]);
    var index = all.indexOf(here);
    var next = all[index + step];
    if (next) return focusRow(next);
    if (step > 0) {
      var more = document.querySelector("[data-action='next-batch']");
      if (more) more.focus();
    }
  }

  function rowAfter(id) {
    var all = rows();
    var row = document.getElementById(id);
    var index = all.indexOf(row);
    return all[index + 1] || row;
  }

  // The reason box of a row.
  function openReason(form, decision) {
    var box = form.querySelector(".reason-box");
    var toggle = form.querySelector("[data-action='reason']");
    box.hidden = false;
    if (toggle) toggle.setAttribute("aria-expanded", "true");
    form.setAttribute("data-pending", decision || "");
    box.querySelectorAll("[data-hint-for]").forEach(function (hint) {
      hint.hidden = hint.getAttribute("data-hint-for") !== decision;
    });
    box.querySelectorAll(".reason-buttons button[name='decision']").forEach(function (button) {
      button.classList.toggle("primary", button.value === decision);
    });
    box.querySelector("textarea").focus();
  }

  function closeReason(form) {
    var box = form.querySelector(".reason-box");
    var toggle = form.querySelector("[data-action='reason']");
    box.hidden = true;
    if (toggle) toggle.setAttribute("aria-expanded", "false");
    form.setAttribute("data-pending", "");
    focusRow(rowOf(form), false);
  }

  // A decision the campaign wants a reason for opens the reason box instead of going out.
  // Capturing: this runs before htmx's own listener on the form, which it stops.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!form.matches || !form.matches("form.decide")) return;
      var button = event.submitter;
      if (!button || button.name !== "decision") return;
      var reason = form.querySelector("textarea[name='reason']");
      if (button.hasAttribute("data-needs-reason") && !reason.value.trim()) {
        event.preventDefault();
        event.stopImmediatePropagation();
        openReason(form, button.value);
      }
    },
    true
  );

  function decideRow(row, decision) {
    var button = row && row.querySelector(".decide-buttons button[value='" + decision + "']");
    // A click, not requestSubmit: htmx learns which button was pressed from the click.
    if (button) button.click();
  }

  // The side panel. `focus`: what has the focus once it arrives: the panel, the reduce
  // checklist, or the row the reviewer stays on while the panel follows them.
  function openPanel(row, query, focus) {
    if (!row) return;
    panelRow = row;
    afterPanelLoad = focus || "panel";
    htmx.ajax("GET", row.getAttribute("data-url") + (query || ""), {
      target: "#side-panel",
      swap: "innerHTML",
    });
  }

  function closePanel() {
    var panel = sidePanel();
    if (!panel) return;
    panel.classList.remove("open");
    panel.innerHTML = "";
    document.body.classList.remove("panel-open");
    var row = panelRow && document.getElementById(panelRow.id);
    panelRow = null;
    if (row) focusRow(row, false);
  }

  function reduceRow(row) {
    if (!row) return;
    if (!row.hasAttribute("data-reducible")) return say(text("not-reducible"));
    openPanel(row, "?decision=reduce", "reduce");
  }

  function toggleSelected(row) {
    var box = row && row.querySelector("input[name='item']");
    if (!box) return;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function countSelected() {
    var count = document.querySelectorAll("input[name='item'][form='bulk-form']:checked").length;
    document.querySelectorAll("[data-selected-count]").forEach(function (element) {
      element.textContent = count;
    });
  }

  function showHelp() {
    var help = document.getElementById("key-help");
    if (help && !help.open) help.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    var help = document.getElementById("key-help");
    if (help && help.open) return; // the dialog handles its own Esc
    var form = target.closest && target.closest("form.decide");

    if (target.matches && target.matches(".reason-box textarea")) {
      if (event.key === "Enter" && !event.shiftKey) {
        var pending = form.getAttribute("data-pending");
        var button = pending && form.querySelector(".reason-buttons button[value='" + pending + "']");
        if (button) {
          event.preventDefault();
          button.click();
        }
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeReason(form);
      }
      return;
    }
    if (event.key === "Escape" && panelOpen()) {
      event.preventDefault();
      return closePanel();
    }
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog")) return;
    if (target.closest && target.closest("#item-panel")) {
      // Reading an item in the panel: j and k go on to the next or previous one there.
      if ((event.key === "j" || event.key === "k") && panelRow) {
        var all = rows();
        var from = all.indexOf(document.getElementById(panelRow.id));
        var to = all[from + (event.key === "j" ? 1 : -1)];
        if (to) {
          event.preventDefault();
          focusRow(to, false);
          openPanel(to, "", "panel");
        }
      }
      return;
    }
    if (!document.querySelector("tr.queue-row")) {
      if (event.key === "?") showHelp();
      return;
    }
    var row = rowOf(target);
    var onRow = row && target === row;
    switch (event.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "ArrowDown":
      case "ArrowUp":
        // Only from a row: elsewhere the arrows scroll the page as usual.
        if (!row) return;
        move(event.key === "ArrowDown" ? 1 : -1);
        break;
      case "a":
        decideRow(row || currentRow(), "keep");
        break;
      case "r":
        decideRow(row || currentRow(), "revoke");
        break;
      case "u":
        reduceRow(row || currentRow());
        break;
      case "e":
        var chosen = row || currentRow();
        var decide = chosen && chosen.querySelector("form.decide");
        if (decide) openReason(decide, "");
        break;
      case "x":
        toggleSelected(row || currentRow());
        break;
      case "Enter":
        if (!onRow) return; // Enter on a button or link is theirs
        if (panelOpen() && panelRow && panelRow.id === row.id) {
          var shown = document.getElementById("item-panel");
          if (shown) shown.focus();
        } else {
          openPanel(row, "", "panel");
        }
        break;
      case "?":
        showHelp();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var action = event.target.closest && event.target.closest("[data-action]");
    var name = action && action.getAttribute("data-action");
    if (name === "reason") {
      var form = action.closest("form.decide");
      if (form.querySelector(".reason-box").hidden) openReason(form, form.getAttribute("data-pending"));
      else closeReason(form);
    } else if (name === "cancel-reason") {
      closeReason(action.closest("form.decide"));
    } else if (name === "close-panel") {
      closePanel();
    } else if (name === "help") {
      showHelp();
    } else if (name === "select-page") {
      document.querySelectorAll("input[name='item'][form='bulk-form']").forEach(function (box) {
        box.checked = action.checked;
      });
      countSelected();
    } else if (name === "reduce") {
      afterPanelLoad = "reduce";
      panelRow = rowOf(action);
    } else {
      var link = event.target.closest && event.target.closest("[data-panel-link]");
      if (link) {
        panelRow = rowOf(link);
        afterPanelLoad = "panel";
      }
      var row = rowOf(event.target);
      // A click on a row's text makes it the current row, as j and k would.
      if (row && !event.target.closest("a, button, input, textarea, select, label")) focusRow(row, false);
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("input[name='item'][form='bulk-form']")) countSelected();
    if (event.target.matches(".decision-form input[name='decision']")) requireReason(event.target.form);
  });

  // The panel's reason is marked required for the decisions the campaign wants one for.
  function requireReason(form) {
    if (!form) return;
    var reason = form.querySelector("textarea[data-required-for]");
    var chosen = form.querySelector("input[name='decision']:checked");
    if (!reason || !chosen) return;
    var wanted = reason.getAttribute("data-required-for").split(" ").indexOf(chosen.value) !== -1;
    reason.required = wanted;
    reason.setAttribute("aria-required", wanted ? "true" : "false");
  }

  // What each request came from, kept on its xhr: a row, the panel or the bulk form.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var row = rowOf(elt);
    var target = event.detail.target;
    event.detail.xhr.attestSource = {
      rowId: row ? row.id : null,
      // A decision or a delegation, answered with the whole panel; not the reduction's
      // preview, which fills a part of the panel and must not move on to the next item.
      fromPanel: !!(target && target.id === "item-panel"),
      bulk: elt.id === "bulk-form",
    };
  });

  var settled = null;

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail;
    // Out-of-band swaps settle too, with the same details: one response is handled once.
    if (!detail.xhr || detail.xhr === settled) return;
    settled = detail.xhr;
    var status = detail.xhr.status;
    var target = detail.target;
    var request = detail.xhr.attestSource || {};

    if (target && target.id === "side-panel") {
      // A panel was loaded.
      var panel = sidePanel();
      panel.classList.add("open");
      document.body.classList.add("panel-open");
      var section = document.getElementById("item-panel");
      requireReason(section && section.querySelector(".decision-form"));
      if (afterPanelLoad === "reduce") {
        var first = section && section.querySelector(".keep-choices input");
        (first || section).focus();
      } else if (afterPanelLoad !== "row" && section) {
        section.focus();
      }
      afterPanelLoad = null;
      return;
    }
    if (request.fromPanel && document.getElementById("item-panel")) {
      var updated = document.getElementById("item-panel");
      requireReason(updated.querySelector(".decision-form"));
      if (status === 200 && panelRow && panelOpen()) {
        // Decided in the panel: on to the next item, in the panel too.
        var next = rowAfter(panelRow.id);
        if (next && next.id !== panelRow.id) {
          focusRow(next, false);
          openPanel(next, "", "panel");
          return;
        }
      }
      updated.focus();
      return;
    }
    if (request.rowId) {
      var row = document.getElementById(request.rowId);
      if (!row) return;
      if (status === 200) {
        focusRow(rowAfter(request.rowId));
      } else {
        var box = row.querySelector(".reason-box:not([hidden]) textarea");
        if (box) box.focus();
        else focusRow(row, false);
      }
      return;
    }
    if (request.bulk || (target && target.id === "queue-results")) {
      countSelected();
      if (request.bulk && status === 200) {
        var firstOpen = document.querySelector("tr.queue-row:not(.decided)") || rows()[0];
        if (firstOpen) focusRow(firstOpen, false);
      }
      var all = rows();
      if (all.length && !document.querySelector("tr.queue-row[tabindex='0']")) all[0].tabIndex = 0;
    }
  });

  // The status line says what was done, then fades; its words stay for screen readers.
  var fadeTimer = null;
  function watchStatus() {
    var status = document.getElementById("queue-status");
    if (!status || !window.MutationObserver) return;
    new MutationObserver(function () {
      status.classList.remove("faded");
      clearTimeout(fadeTimer);
      fadeTimer = setTimeout(function () {
        status.classList.add("faded");
      }, 6000);
    }).observe(status, { childList: true, characterData: true, subtree: true });
  }

  function start() {
    watchStatus();
    var all = rows();
    if (all.length) all[0].tabIndex = 0;
    countSelected();
    requireReason(document.querySelector(".decision-form"));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
