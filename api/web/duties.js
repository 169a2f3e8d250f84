// Duties page for the property company and the owners' committee: their
// open duties from contingency plans, with big confirm and done buttons.
"use strict";
(function () {
  SW.words({
    "zh-CN": {title: "守望 我的职责", signinTitle: "物业、业委会登录", none: "目前没有待办职责。", ack: "确认收到", done: "已完成",
      due: "请在 {t} 前完成", overdue: "已超时！", incident: "事件", failed: "操作失败：",
      du_assigned: "待确认", du_acknowledged: "已确认，进行中", du_overdue: "超时", du_done: "已完成"},
    "en": {title: "Shouwang: my duties", signinTitle: "Property company / owners' committee sign-in", none: "No open duties.", ack: "Got it",
      done: "Done", due: "Due by {t}", overdue: "Overdue!", incident: "Incident", failed: "Failed: ",
      du_assigned: "to confirm", du_acknowledged: "confirmed, in progress", du_overdue: "overdue", du_done: "done"}
  });
  var $ = function (id) { return document.getElementById(id); };
  var el = SW.el, me = null;

  function fill(s, vars) { return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k]; }); }

  function act(d, what) {
    SW.api("POST", "/v1/duties/" + encodeURIComponent(d.id) + "/" + what).then(function (r) {
      if (r.status >= 300) window.alert(SW.t("failed") + ((r.body && r.body.error && r.body.error.message) || r.status));
      load();
    });
  }

  function load() {
    SW.api("GET", "/v1/duties?mine=1").then(function (r) {
      if (r.status !== 200) return;
      var open = (r.body.duties || []).filter(function (d) { return d.status !== "done" && d.status !== "pending" && d.status !== "skipped"; });
      var box = $("duties");
      box.innerHTML = "";
      open.forEach(function (d) {
        var buttons = el("div", {class: "buttons"}, [
          (d.status === "assigned" || (d.status === "overdue" && !d.acknowledged_at)) ? el("button", {type: "button", class: "ack", text: SW.t("ack"), onclick: function () { act(d, "ack"); }}) : null,
          el("button", {type: "button", class: "done", text: SW.t("done"), onclick: function () { act(d, "done"); }})
        ]);
        box.appendChild(el("article", {class: "duty" + (d.status === "overdue" ? " overdue" : ""), "data-duty": d.id, "data-status": d.status}, [
          el("h2", {text: SW.label(d.title)}),
          el("p", {text: SW.label(d.instructions)}),
          el("p", {class: "state", text: SW.t("du_" + d.status) + " · " + (d.status === "overdue" ? SW.t("overdue") : fill(SW.t("due"), {t: SW.time(d.due_at)}))}),
          buttons]));
      });
      $("none").classList.toggle("hidden", open.length > 0);
    });
  }

  function start(who) {
    me = who;
    if (!me || (me.role !== "org" && me.role !== "dispatcher" && me.role !== "admin")) { $("signin").classList.remove("hidden"); return; }
    $("signin").classList.add("hidden");
    $("list").classList.remove("hidden");
    $("logout").classList.remove("hidden");
    $("who").textContent = me.name || me.subject;
    SW.stream("", function () { load(); }, function (up) { if (up) load(); });
    load();
  }

  SW.staffPage(start, load);
})();
