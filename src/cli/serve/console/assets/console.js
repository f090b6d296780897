// Optional: shows every <time data-local> in the browser's time zone. Without it, the
// console shows UTC, labelled as such.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var fmt, precise;
  try {
    var parts = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    fmt = new Intl.DateTimeFormat(undefined, parts);
    parts.second = "2-digit";
    precise = new Intl.DateTimeFormat(undefined, parts);
  } catch (e) {
    return;
  }
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.title = el.textContent;
      el.textContent = (el.dataset.local === "seconds" ? precise : fmt).format(d);
    }
  });
});
