// deadletter dashboard: small progressive enhancements over server-rendered pages.
// Every page works without this script; it adds local times, the chart, the payload
// editor's checks and diff, row selection and the theme switch. No inline script and
// no eval anywhere: the Content-Security-Policy forbids both.
"use strict";

(function () {
  const THEME_KEY = "deadletter-theme";

  function applyTheme() {
    const chosen = localStorage.getItem(THEME_KEY);
    if (chosen) document.documentElement.dataset.theme = chosen;
  }

  function toggleTheme() {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    document.documentElement.dataset.theme = next;
    document.querySelectorAll(".chart").forEach(drawChart);
  }

  // Times arrive in UTC; show them in the browser's zone, with UTC kept on hover.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      el.title = at.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
      el.textContent = at.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    });
  }

  // A time range picked in the browser's zone travels as epoch seconds (since, until):
  // the inputs themselves have no name, so the URL holds the numbers the API takes.
  function localInput(epoch) {
    const at = new Date(epoch * 1000);
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) +
      "T" + pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds());
  }

  function timeRange(root) {
    root.querySelectorAll("[data-epoch-of]").forEach(function (input) {
      const hidden = document.getElementById(input.dataset.epochOf);
      if (hidden.value && !isNaN(Number(hidden.value))) input.value = localInput(Number(hidden.value));
      input.addEventListener("change", function () {
        const at = new Date(input.value);
        hidden.value = input.value && !isNaN(at) ? String(at.getTime() / 1000) : "";
      });
    });
  }

  function selectAll(root) {
    root.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        box.closest("form").querySelectorAll('input[name="job_id"]').forEach(function (row) {
          row.checked = box.checked;
        });
      });
    });
  }

  const CLASS_VARS = {
    RECOVERABLE: "--recoverable", USER_ERROR: "--user-error",
    SYSTEM_ERROR: "--system-error", UNKNOWN: "--unknown",
  };

  function drawChart(el) {
    if (typeof uPlot === "undefined") return;
    const data = JSON.parse(el.dataset.series);
    const style = getComputedStyle(document.documentElement);
    const classes = Object.keys(data.counts);
    const series = [{}].concat(classes.map(function (name) {
      const color = style.getPropertyValue(CLASS_VARS[name] || "--unknown").trim();
      return { label: name, stroke: color, width: 2, fill: color + "22", points: { show: false } };
    }));
    const axis = { stroke: style.getPropertyValue("--fg").trim(), grid: { stroke: style.getPropertyValue("--grid").trim() } };
    const opts = {
      width: Math.max(280, el.clientWidth), height: 240, series: series,
      axes: [axis, Object.assign({}, axis, { size: 50 })],
      scales: { x: { time: true } }, cursor: { drag: { x: false, y: false } },
    };
    el.textContent = "";
    const plot = new uPlot(opts, [data.times].concat(classes.map(function (c) { return data.counts[c]; })), el);
    el._plot = plot;
  }

  function charts(root) {
    root.querySelectorAll(".chart[data-series]").forEach(drawChart);
  }

  // The payload editor: JSON checked as it is typed, the change shown as a line diff
  // against the stored payload, and the button held back until the JSON is valid.
  function canonical(value) {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === "object") {
      const out = {};
      Object.keys(value).sort().forEach(function (k) { out[k] = canonical(value[k]); });
      return out;
    }
    return value;
  }

  function pretty(value) { return JSON.stringify(canonical(value), null, 2).split("\n"); }

  function lineDiff(a, b) {
    const n = a.length, m = b.length;
    const lcs = [];
    for (let i = 0; i <= n; i++) lcs.push(new Array(m + 1).fill(0));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
      else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["+", b[j]]); j++; }
      else { out.push(["-", a[i]]); i++; }
    }
    return out;
  }

  function shapeProblem(value) {
    if (!value || typeof value !== "object" || Array.isArray(value)) return "must be an object";
    const extra = Object.keys(value).filter(function (k) { return k !== "args" && k !== "kwargs"; });
    if (extra.length) return "unexpected key " + extra[0] + ": only args and kwargs";
    if ("args" in value && !Array.isArray(value.args)) return "args must be a list";
    if ("kwargs" in value && (typeof value.kwargs !== "object" || Array.isArray(value.kwargs) || value.kwargs === null))
      return "kwargs must be an object";
    return null;
  }

  function editor(form) {
    const area = form.querySelector("textarea");
    const status = form.querySelector(".json-status");
    const diff = form.querySelector(".diff");
    const button = form.querySelector("button[type=submit]");
    const original = pretty(JSON.parse(area.dataset.original));
    function check() {
      let value;
      try { value = JSON.parse(area.value); } catch (err) {
        status.textContent = "Not valid JSON: " + err.message;
        status.className = "json-status bad"; button.disabled = true; diff.textContent = ""; return;
      }
      const problem = shapeProblem(value);
      if (problem) {
        status.textContent = "Not a payload: " + problem;
        status.className = "json-status bad"; button.disabled = true; diff.textContent = ""; return;
      }
      const lines = lineDiff(original, pretty(value));
      const changed = lines.some(function (l) { return l[0] !== " "; });
      status.textContent = changed ? "Valid JSON; the changes are below." : "Valid JSON, unchanged.";
      status.className = "json-status good"; button.disabled = false;
      diff.textContent = "";
      if (!changed) return;
      const pre = document.createElement("pre");
      lines.forEach(function (l) {
        const row = document.createElement("span");
        row.className = l[0] === "+" ? "add" : l[0] === "-" ? "del" : "same";
        row.textContent = l[0] + " " + l[1] + "\n";
        pre.appendChild(row);
      });
      diff.appendChild(pre);
    }
    area.addEventListener("input", check);
    check();
  }

  function init(root) {
    localTimes(root);
    timeRange(root);
    selectAll(root);
    charts(root);
    root.querySelectorAll("[data-json-editor]").forEach(editor);
    root.querySelectorAll("[data-theme-toggle]").forEach(function (b) { b.addEventListener("click", toggleTheme); });
  }

  applyTheme();
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // Parts that htmx swaps in (the overview's live part, the bulk runs) are new nodes.
  document.addEventListener("htmx:afterSettle", function () {
    localTimes(document);
    document.querySelectorAll(".chart[data-series]").forEach(function (el) {
      if (!el._plot) drawChart(el);
    });
  });
})();
