// The resident's page: one tap sends an alarm. A press is written to the
// phone's storage before it is sent and removed only when the server has
// stored it (202), so a press made without signal goes out, once, with
// the same key when the network returns.
"use strict";
(function () {
  SW.words({
    "zh-CN": {title: "守望 一键求助", signinTitle: "用手机号登录", signinHelp: "输入您登记的手机号，我们会发一条短信，点短信里的链接即可登录。",
      phone: "手机号", sendLink: "发送登录短信", smsSent: "短信已发送。请点击短信中的链接。", pressTitle: "选择求助类型",
      fire: "火灾", medical: "急救", gas_leak: "燃气泄漏", flood: "水浸", suspicious_object: "可疑物品", other: "求助",
      sending: "正在发送…", received: "已收到！正在通知附近的救援人员。", queued: "网络不通：求助已保存在手机上，网络恢复后会自动发送。",
      failed: "发送失败：", statusLabel: "状态", helperLabel: "救援人员", waiting: "正在寻找", imSafe: "我安全了（取消求助）",
      st_received: "已收到", st_open: "已受理，正在通知", st_responding: "有人正在赶来", st_escalated: "已上报应急中心",
      st_resolved: "已处理完毕", st_cancelled: "已取消", coming: "{name} 已接受，距您约 {d} 米", arrived: "{name} 已到达"},
    "en": {title: "Shouwang Help", signinTitle: "Sign in with your phone", signinHelp: "Enter your registered mobile number; we will text you a link to sign in.",
      phone: "Mobile number", sendLink: "Text me a link", smsSent: "Text sent. Tap the link in it.", pressTitle: "Choose what is wrong",
      fire: "Fire", medical: "Medical", gas_leak: "Gas leak", flood: "Flood", suspicious_object: "Suspicious object", other: "Help",
      sending: "Sending…", received: "Received! Nearby responders are being alerted.", queued: "No network: your call is saved on this phone and will be sent when the network is back.",
      failed: "Could not send: ", statusLabel: "Status", helperLabel: "Responder", waiting: "Looking", imSafe: "I'm safe (cancel)",
      st_received: "Received", st_open: "Alerting responders", st_responding: "Someone is coming", st_escalated: "Passed to the emergency center",
      st_resolved: "Handled", st_cancelled: "Cancelled", coming: "{name} accepted, about {d} m away", arrived: "{name} is here"}
  });
  var $ = function (id) { return document.getElementById(id); };
  var QUEUE = "sw-queue", LAST = "sw-last-alarm";
  var live = null, incident = "";

  function say(text, kind) { var m = $("msg"); m.textContent = text; m.className = "notice " + kind; }
  function fill(s, vars) { return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k]; }); }
  function queue() { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { localStorage.setItem(QUEUE, JSON.stringify(q)); }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // where asks the phone for its position, for at most 4 seconds; without
  // it the server uses the registered address.
  function where() {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) return resolve(null);
      var done = false;
      var timer = setTimeout(function () { if (!done) { done = true; resolve(null); } }, 4000);
      navigator.geolocation.getCurrentPosition(function (p) {
        if (done) return; done = true; clearTimeout(timer);
        resolve({lat: p.coords.latitude, lng: p.coords.longitude});
      }, function () { if (done) return; done = true; clearTimeout(timer); resolve(null); }, {enableHighAccuracy: true, timeout: 3500, maximumAge: 60000});
    });
  }

  var sending = false, notBefore = 0;
  // flush sends every queued press, oldest first, each with its own key.
  // A press the server cannot take now (429 too many, 503 busy) stays
  // queued and is sent again with the same key once Retry-After has passed.
  function flush() {
    if (sending || Date.now() < notBefore) return;
    var q = queue();
    if (!q.length) return;
    sending = true;
    var item = q[0];
    var body = {key: item.key, type: item.type};
    if (item.location) body.location = item.location;
    SW.api("POST", "/v1/alarms", body).then(function (r) {
      sending = false;
      if (r.status === 202) {
        saveQueue(queue().filter(function (x) { return x.key !== item.key; }));
        localStorage.setItem(LAST, r.body.alarm_id);
        say(SW.t("received"), "ok");
        follow(r.body.alarm_id);
        flush();
      } else if (r.status === 503 || r.status === 429 || r.status >= 500) {
        say(SW.t("queued"), "warn");
        var wait = Math.max(r.retryAfter || 1, 1) * 1000;
        notBefore = Date.now() + wait;
        setTimeout(flush, wait);
      } else {
        // The server refused it for good (signed out, bad input): say so; keeping it would retry forever.
        saveQueue(queue().filter(function (x) { return x.key !== item.key; }));
        say(SW.t("failed") + ((r.body && r.body.error && r.body.error.message) || r.status), "bad");
      }
    }, function () {
      sending = false;
      say(SW.t("queued"), "warn");
    });
  }

  function press(type) {
    say(SW.t("sending"), "warn");
    where().then(function (loc) {
      var q = queue();
      q.push({key: newKey(), type: type, location: loc, at: new Date().toISOString()});
      saveQueue(q);
      flush();
    });
  }

  // follow shows what became of a press, live. The 202 comes when the
  // press is safe on the bus, before it is written down: a 404 at first
  // means "not yet", and busy answers (429, 5xx) mean "later".
  function follow(alarmID, tries) {
    tries = tries || 0;
    SW.api("GET", "/v1/alarms/" + encodeURIComponent(alarmID)).then(function (r) {
      if (r.status === 429 || r.status >= 500 || (r.status === 404 && tries < 60)) {
        setTimeout(function () { follow(alarmID, tries + 1); }, Math.max(r.retryAfter || 1, 1) * 1000);
        return;
      }
      if (r.status !== 200) return;
      $("detail").classList.remove("hidden");
      $("d-status").textContent = SW.t("st_received");
      if (!r.body.incident_id) { setTimeout(function () { follow(alarmID); }, 1000); return; }
      if (incident !== r.body.incident_id) {
        incident = r.body.incident_id;
        if (live) live.close();
        // Read the incident again once the stream is open: a change made
        // before it opened would otherwise be missed.
        live = SW.stream("?incident=" + encodeURIComponent(incident), showIncident, function (up) { if (up) showIncident(); });
      }
      showIncident();
    }, function () { setTimeout(function () { follow(alarmID); }, 3000); });
  }

  function showIncident() {
    if (!incident) return;
    SW.api("GET", "/v1/incidents/" + encodeURIComponent(incident)).then(function (r) {
      if (r.status !== 200) return;
      var in_ = r.body;
      $("d-status").textContent = SW.t("st_" + in_.status) || in_.status;
      var helper = SW.t("waiting");
      (in_.offers || []).forEach(function (o) {
        if (o.arrived_at) helper = fill(SW.t("arrived"), {name: o.name});
        else if (o.status === "accepted" && helper === SW.t("waiting")) helper = fill(SW.t("coming"), {name: o.name, d: Math.round(o.distance_m)});
      });
      $("d-helper").textContent = helper;
      var active = ["open", "responding", "escalated"].indexOf(in_.status) >= 0;
      $("safe").classList.toggle("hidden", !active);
    });
  }

  function start(me) {
    if (!me || me.role !== "resident") { $("signin").classList.remove("hidden"); return; }
    $("press").classList.remove("hidden");
    if (queue().length) { say(SW.t("queued"), "warn"); flush(); }
    else if (localStorage.getItem(LAST)) follow(localStorage.getItem(LAST));
  }

  document.querySelectorAll(".alarm").forEach(function (b) {
    b.addEventListener("click", function () { press(b.getAttribute("data-type")); });
  });
  $("sms-form").addEventListener("submit", function (e) {
    e.preventDefault();
    SW.api("POST", "/v1/login/sms", {phone: $("phone").value.trim()}).then(function () { $("sms-sent").classList.remove("hidden"); });
  });
  $("safe").addEventListener("click", function () {
    SW.api("POST", "/v1/incidents/" + encodeURIComponent(incident) + "/safe").then(showIncident);
  });
  $("lang").addEventListener("click", function () { SW.setLang(SW.lang() === "en" ? "zh-CN" : "en"); showIncident(); });
  window.addEventListener("online", flush);
  setInterval(flush, 3000); // the online event is not reliable on every phone
  SW.setLang(SW.lang());
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(function () {});
  SW.session().then(start, function () { start(null); });
})();
