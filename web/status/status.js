// The public status page: reads GET /status and renders the overall state, each service
// and the 15-day uptime as 30 half-day bars. Plain DOM (textContent only), no dependency.
(function () {
  "use strict";

  var config = window.OPTRALIS_STATUS_CONFIG || {};
  var apiUrl = String(config.apiUrl || "").replace(/\/+$/, "");
  var REFRESH_MS = 60 * 1000;
  var HALF_DAY_MS = 12 * 60 * 60 * 1000;

  var LABELS = { api: "API", database: "Database", ai: "AI", cache: "Cache" };
  var ORDER = ["api", "database", "ai", "cache"]; // others after, by name
  var OVERALL = {
    online: "All systems operational",
    degraded: "Degraded performance",
    offline: "Service outage"
  };
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Times are shown in UTC: the periods are aligned on 00:00 and 12:00 UTC.
  function day(d) { return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()]; }
  function hour(d) { return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()); }
  function stamp(d) { return day(d) + " " + d.getUTCFullYear() + ", " + hour(d) + " UTC"; }
  function period(start) {
    var end = new Date(start.getTime() + HALF_DAY_MS);
    var endHour = end.getUTCHours() === 0 ? "24:00" : hour(end);
    return day(start) + " " + hour(start) + "–" + endHour + " UTC";
  }

  function percent(v) {
    if (v >= 100) return "100 %";
    return (Math.floor(v * 10) / 10).toFixed(1) + " %";
  }

  // 100 %: up; 95–99.9 %: partial outage; below: outage.
  function level(v) {
    if (v >= 99.95) return "up";
    if (v >= 95) return "partial";
    return "down";
  }

  function renderOverall(state, text) {
    var box = document.getElementById("overall");
    box.setAttribute("data-state", state);
    document.getElementById("overall-text").textContent = text;
  }

  function renderServices(services) {
    var list = document.getElementById("services");
    list.textContent = "";
    if (!services.length) {
      list.appendChild(el("li", "muted", "No health check has run yet."));
      return;
    }
    var rank = function (s) { var i = ORDER.indexOf(s.name); return i < 0 ? ORDER.length : i; };
    services.slice().sort(function (a, b) {
      return rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    }).forEach(function (s) {
      var li = el("li", "service");
      li.setAttribute("data-service", s.name);
      li.setAttribute("data-status", s.status);
      li.appendChild(el("span", "name", LABELS[s.name] || s.name));
      li.appendChild(el("span", "pill " + s.status, s.status));
      var detail = el("span", "detail muted");
      var parts = [];
      if (s.status !== "offline" && s.name !== "api") parts.push(s.response_time_ms + " ms");
      if (s.checked_at) parts.push("checked " + stamp(new Date(s.checked_at)));
      detail.textContent = parts.join(" · ");
      li.appendChild(detail);
      if (s.optional) {
        var tag = el("span", "tag", "optional");
        tag.title = "The service runs without it: it does not change the overall status";
        li.appendChild(tag);
      }
      list.appendChild(li);
    });
  }

  function renderBars(values, startISO, uptimePercent) {
    var bars = document.getElementById("bars");
    var detail = document.getElementById("bar-detail");
    bars.textContent = "";
    if (!values || !values.length) {
      document.getElementById("uptime-percent").textContent = "";
      detail.textContent = "Uptime history unavailable.";
      return;
    }
    var start = new Date(startISO);
    values.forEach(function (v, i) {
      var from = new Date(start.getTime() + i * HALF_DAY_MS);
      var text = period(from) + ": " + percent(v) + " available";
      var bar = el("div", "bar " + level(v));
      bar.setAttribute("role", "listitem");
      bar.setAttribute("tabindex", "0");
      bar.setAttribute("data-uptime", String(v));
      bar.setAttribute("data-period-start", from.toISOString());
      bar.setAttribute("aria-label", text);
      bar.title = text;
      var show = function () { detail.textContent = text; };
      bar.addEventListener("mouseenter", show);
      bar.addEventListener("focus", show);
      bar.addEventListener("click", show);
      bars.appendChild(bar);
    });
    document.getElementById("bars-from").textContent = day(start);
    document.getElementById("uptime-percent").textContent = percent(uptimePercent) + " over 15 days";
  }

  function render(page) {
    renderOverall(page.status, OVERALL[page.status] || page.status);
    renderServices(page.services || []);
    renderBars(page.uptime_15_days, page.uptime_start, page.uptime_percent);
    document.getElementById("generated").textContent = "Updated " + stamp(new Date(page.generated_at));
    document.body.setAttribute("data-loaded", "true");
  }

  function load() {
    fetch(apiUrl + "/status", { headers: { Accept: "application/json" }, credentials: "omit" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render)
      .catch(function () {
        renderOverall("error", "Status unavailable: the status service cannot be reached");
        document.body.setAttribute("data-loaded", "error");
      });
  }

  load();
  setInterval(load, REFRESH_MS);
})();
