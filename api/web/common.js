// Shared by the pages: language, API calls with the session's CSRF token,
// the live event stream. Plain ES2017, no build step.
"use strict";
var SW = (function () {
  // zh-CN unless this person chose English (or the link asks for it):
  // the browser's own language says little about who holds the phone.
  var lang = new URLSearchParams(location.search).get("lang") === "en" ? "en" : (localStorage.getItem("sw-lang") || "zh-CN");
  var csrf = "";
  var dict = {};

  function t(key) {
    var d = dict[lang] || dict["zh-CN"] || {};
    return d[key] !== undefined ? d[key] : ((dict["zh-CN"] || {})[key] || key);
  }

  function setLang(l) {
    lang = l;
    localStorage.setItem("sw-lang", l);
    document.documentElement.lang = l;
    document.querySelectorAll("[data-t]").forEach(function (el) { el.textContent = t(el.getAttribute("data-t")); });
    document.querySelectorAll("[data-t-label]").forEach(function (el) { el.setAttribute("aria-label", t(el.getAttribute("data-t-label"))); });
  }

  // api calls the JSON API with the session cookie; unsafe methods carry
  // the CSRF token. It resolves to {status, body, retryAfter} (retryAfter:
  // the Retry-After header in seconds, 0 without one); network failures reject.
  function api(method, path, body) {
    var headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, {method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)}).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        return {status: r.status, body: parsed, retryAfter: parseInt(r.headers.get("Retry-After") || "0", 10) || 0};
      });
    });
  }

  function session() {
    return api("GET", "/v1/session").then(function (r) {
      if (r.status === 200) { csrf = r.body.csrf || ""; return r.body; }
      return null;
    });
  }

  function login(username, password) {
    return api("POST", "/v1/login", {username: username, password: password}).then(function (r) {
      if (r.status === 200) { csrf = r.body.csrf || ""; return r.body; }
      throw new Error((r.body && r.body.error && r.body.error.message) || ("HTTP " + r.status));
    });
  }

  function logout() { return api("POST", "/v1/logout").then(function () { location.reload(); }); }

  // stream follows the live events; onEvent gets each incident event,
  // onState true/false as the connection comes and goes (EventSource
  // reconnects by itself).
  function stream(query, onEvent, onState) {
    var es = new EventSource("/v1/stream" + (query || ""));
    es.addEventListener("incident", function (e) {
      try { onEvent(JSON.parse(e.data)); } catch (err) { /* a bad line must not stop the board */ }
    });
    es.onopen = function () { if (onState) onState(true); };
    es.onerror = function () { if (onState) onState(false); };
    return es;
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.indexOf("on") === 0) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  function time(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return d.toLocaleTimeString(lang === "en" ? "en-GB" : "zh-CN", {hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: "Asia/Shanghai"});
  }

  // staffPage wires what the console and the duties page share: the
  // sign-in form, sign-out, the language switch (redraw repaints), and
  // starting with whoever is signed in (null when nobody is).
  function staffPage(start, redraw) {
    var $ = function (id) { return document.getElementById(id); };
    $("login-form").addEventListener("submit", function (e) {
      e.preventDefault();
      login($("username").value.trim(), $("password").value).then(start, function (err) {
        $("login-error").textContent = t("signinFailed") + err.message;
        $("login-error").classList.remove("hidden");
      });
    });
    $("logout").addEventListener("click", logout);
    $("lang").addEventListener("click", function () { setLang(lang === "en" ? "zh-CN" : "en"); redraw(); });
    setLang(lang);
    session().then(start, function () { start(null); });
  }

  function label(l) { return !l ? "" : (lang === "en" ? (l.en || l["zh-CN"]) : (l["zh-CN"] || l.en)); }

  return {
    t: t, setLang: setLang, api: api, staffPage: staffPage, session: session, login: login, logout: logout, stream: stream, el: el, time: time, label: label,
    lang: function () { return lang; },
    words: function (d) { Object.keys(d).forEach(function (l) { dict[l] = Object.assign(dict[l] || {}, d[l]); }); }
  };
})();

SW.words({
  "zh-CN": {lang: "English", logout: "退出", username: "用户名或手机号", password: "密码", signin: "登录",
    signinFailed: "登录失败：", offline: "网络已断开", online: "实时连接"},
  "en": {lang: "中文", logout: "Sign out", username: "User name or phone", password: "Password", signin: "Sign in",
    signinFailed: "Sign-in failed: ", offline: "Offline", online: "Live"}
});
