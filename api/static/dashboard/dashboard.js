// Keyboard loop and OCR boxes. No framework: the pages work without this file, it only helps.
(function () {
  "use strict";

  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  // Queue: j/k move the selection, Enter opens, / jumps to search.
  function queueKeys() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("table.jobs tbody tr[data-href]"));
    var at = -1;
    function select(i) {
      if (!rows.length) return;
      if (at >= 0) rows[at].classList.remove("selected");
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows[at].classList.add("selected");
      rows[at].scrollIntoView({block: "nearest"});
    }
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "j") { select(at + 1); e.preventDefault(); }
      else if (e.key === "k") { select(at - 1); e.preventDefault(); }
      else if (e.key === "Enter" && at >= 0) { window.location = rows[at].dataset.href; }
      else if (e.key === "/") { var q = document.querySelector("input[name=q]"); if (q) { q.focus(); e.preventDefault(); } }
    });
  }

  // Job: a / r / n pick the decision and focus the comment; Ctrl+Enter saves and goes on;
  // j (or →) opens the next item in the queue.
  function jobKeys() {
    var form = document.getElementById("review-form");
    var next = document.getElementById("next-item");
    var keys = {a: "approve", r: "reject", n: "needs_review"};
    document.addEventListener("keydown", function (e) {
      if (form && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        var go = form.querySelector("button[value=next]");
        if (go) { go.click(); e.preventDefault(); }
        return;
      }
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (form && keys[e.key]) {
        var radio = form.querySelector("input[name=decision][value=" + keys[e.key] + "]");
        if (radio) { radio.checked = true; document.getElementById("comment").focus(); e.preventDefault(); }
      } else if (next && (e.key === "j" || e.key === "ArrowRight")) {
        window.location = next.href;
      }
    });
  }

  // Boxes are in the page image's pixels; place them as percentages once the image size is known.
  function placeBoxes() {
    Array.prototype.forEach.call(document.querySelectorAll("figure.page"), function (fig) {
      var img = fig.querySelector("img");
      function place() {
        var w = img.naturalWidth, h = img.naturalHeight;
        if (!w || !h) return;
        Array.prototype.forEach.call(fig.querySelectorAll(".sheet .box"), function (box) {
          var b = box.dataset.box.split(",").map(Number);
          box.style.left = (b[0] / w * 100) + "%";
          box.style.top = (b[1] / h * 100) + "%";
          box.style.width = ((b[2] - b[0]) / w * 100) + "%";
          box.style.height = ((b[3] - b[1]) / h * 100) + "%";
          box.classList.add("placed");
        });
      }
      if (img.complete) place(); else img.addEventListener("load", place);
    });
    // Hovering or focusing a field lights its boxes on the page.
    Array.prototype.forEach.call(document.querySelectorAll("table.fields tr[data-field]"), function (row) {
      function light(on) {
        document.querySelectorAll('.box[data-field="' + row.dataset.field + '"]').forEach(function (b) {
          b.classList.toggle("lit", on);
        });
      }
      row.addEventListener("mouseenter", function () { light(true); });
      row.addEventListener("mouseleave", function () { light(false); });
      row.addEventListener("focusin", function () { light(true); });
      row.addEventListener("focusout", function () { light(false); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("queue")) queueKeys();
    if (document.querySelector(".job")) { jobKeys(); placeBoxes(); }
    Array.prototype.forEach.call(document.querySelectorAll("table.jobs tbody tr[data-href]"), function (row) {
      row.addEventListener("dblclick", function () { window.location = row.dataset.href; });
    });
    document.documentElement.dataset.keys = "ready";  // shortcuts are live (tests wait for this)
  });
})();
