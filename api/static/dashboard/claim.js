// The claim page while its documents are read: follows the claim's events (Server-Sent Events,
// as GET /v1/claims/{id}/events sends them), counts the documents read, and shows the decided
// claim (checks, totals, review form) by reloading once it is decided.
(function () {
  "use strict";
  // Statuses and stages as words of the page's language (dashboard/base.html, #i18n-strings).
  function t(text) {
    var strings = {};
    try { strings = JSON.parse(document.getElementById("i18n-strings").textContent) || {}; } catch (e) { strings = {}; }
    return strings[text] || text;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("claim");
    if (!section || !section.dataset.events || !window.EventSource) return;
    var source = new EventSource(section.dataset.events);
    function update(event) {
      var claim = JSON.parse(event.data);
      var done = claim.jobs.filter(function (j) { return j.status === "succeeded" || j.status === "failed"; });
      document.getElementById("claim-done").textContent = String(done.length);
      claim.jobs.forEach(function (job) {
        var row = document.querySelector('tr[data-job="' + job.id + '"] .state');
        if (row) row.textContent = job.stage && job.status === "running" ? t("running") + " · " + t(job.stage) : t(job.status);
      });
      if (claim.status === "decided") {
        source.close();
        window.location.reload();
      }
    }
    source.addEventListener("status", update);
    source.addEventListener("done", update);
  });
})();
