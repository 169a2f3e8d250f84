// The dispatcher's board: every open incident of the community, updated
// live from the server's event stream (no polling), with the actions a
// dispatcher takes.
"use strict";
(function () {
  SW.words({
    "zh-CN": {title: "守望 应急指挥台", signinTitle: "调度员登录", board: "进行中的事件", empty: "目前没有进行中的事件。", map: "地图",
      mapHelp: "红点：事件；蓝点：可用的救援人员；网格每格 500 米。", reports: "报警 {n} 次", offers: "响应人员", duties: "预案职责",
      timeline: "时间线", name: "姓名", status: "状态", distance: "距离", duty: "职责", assignee: "承担方", due: "时限",
      redispatch: "重新派单", assign: "指派", assignWho: "选择人员", falseAlarm: "误报", markDrill: "标记为演练", resolve: "结案",
      confirm: "确定要{a}吗？", drill: "演练", done: "已完成", failed: "操作失败：",
      st_open: "待响应", st_responding: "响应中", st_escalated: "已升级", st_resolved: "已结案", st_cancelled: "已取消",
      of_offered: "已通知", of_accepted: "已接受", of_declined: "已拒绝", of_expired: "未回复", of_stood_down: "已撤回", of_failed: "未送达",
      du_pending: "等待前序", du_assigned: "已派发", du_acknowledged: "已确认", du_done: "已完成", du_overdue: "超时", du_skipped: "不在演练范围",
      arrived: "已到达"},
    "en": {title: "Shouwang dispatch", signinTitle: "Dispatcher sign-in", board: "Open incidents", empty: "No open incidents.", map: "Map",
      mapHelp: "Red: incidents; blue: available responders; grid squares are 500 m.", reports: "{n} reports", offers: "Responders", duties: "Plan duties",
      timeline: "Timeline", name: "Name", status: "Status", distance: "Distance", duty: "Duty", assignee: "Assignee", due: "Due",
      redispatch: "Re-dispatch", assign: "Assign", assignWho: "Choose a person", falseAlarm: "False alarm", markDrill: "Mark as drill", resolve: "Resolve",
      confirm: "{a}?", drill: "Drill", done: "Done", failed: "Failed: ",
      st_open: "open", st_responding: "responding", st_escalated: "escalated", st_resolved: "resolved", st_cancelled: "cancelled",
      of_offered: "offered", of_accepted: "accepted", of_declined: "declined", of_expired: "no answer", of_stood_down: "stood down", of_failed: "not delivered",
      du_pending: "waiting", du_assigned: "assigned", du_acknowledged: "acknowledged", du_done: "done", du_overdue: "overdue", du_skipped: "outside the drill",
      arrived: "on scene"}
  });
  var $ = function (id) { return document.getElementById(id); };
  var el = SW.el, me = null, community = null, incidents = {}, responders = [];
  var ACTIVE = ["open", "responding", "escalated"];

  function fill(s, vars) { return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k]; }); }

  function load() {
    SW.api("GET", "/v1/incidents?status=active&limit=200").then(function (r) {
      if (r.status !== 200) return;
      r.body.incidents.forEach(function (i) { refresh(i.id); });
      if (!r.body.incidents.length) render();
    });
    SW.api("GET", "/v1/communities/" + encodeURIComponent(me.community)).then(function (r) { if (r.status === 200) { community = r.body; drawMap(); } });
    SW.api("GET", "/v1/communities/" + encodeURIComponent(me.community) + "/responders?limit=1000").then(function (r) {
      if (r.status === 200) { responders = r.body.responders; drawMap(); render(); }
    });
  }

  function refresh(id) {
    return SW.api("GET", "/v1/incidents/" + encodeURIComponent(id)).then(function (r) {
      if (r.status !== 200) return;
      if (ACTIVE.indexOf(r.body.status) >= 0) incidents[id] = r.body; else delete incidents[id];
      render();
      drawMap();
    });
  }

  function act(in_, path, words, body) {
    if (!window.confirm(fill(SW.t("confirm"), {a: words}))) return;
    SW.api("POST", "/v1/incidents/" + encodeURIComponent(in_.id) + path, body).then(function (r) {
      if (r.status >= 300) window.alert(SW.t("failed") + ((r.body && r.body.error && r.body.error.message) || r.status));
      refresh(in_.id);
    });
  }

  function card(in_) {
    var head = el("h2", {}, [
      el("span", {class: "tag sev", text: in_.severity}),
      el("span", {text: SW.label(in_.type_label)}),
      in_.drill ? el("span", {class: "tag drill", text: SW.t("drill")}) : null,
      el("span", {class: "tag status-" + in_.status, text: SW.t("st_" + in_.status)}),
      el("span", {class: "tag", text: fill(SW.t("reports"), {n: in_.reports})})
    ]);
    var offers = el("table", {}, [el("tr", {}, [el("th", {text: SW.t("name")}), el("th", {text: SW.t("status")}), el("th", {text: SW.t("distance")})])]);
    (in_.offers || []).forEach(function (o) {
      offers.appendChild(el("tr", {}, [el("td", {text: o.name}), el("td", {text: o.arrived_at ? SW.t("arrived") : SW.t("of_" + o.status)}),
        el("td", {text: Math.round(o.distance_m) + " m"})]));
    });
    var duties = el("table", {}, [el("tr", {}, [el("th", {text: SW.t("duty")}), el("th", {text: SW.t("assignee")}), el("th", {text: SW.t("status")}), el("th", {text: SW.t("due")})])]);
    ((in_.plan_run && in_.plan_run.duties) || []).forEach(function (d) {
      duties.appendChild(el("tr", {class: d.status === "overdue" ? "overdue" : "", "data-duty": d.id}, [
        el("td", {text: SW.label(d.title)}), el("td", {text: d.assignee}), el("td", {class: "duty-status", text: SW.t("du_" + d.status)}),
        el("td", {text: SW.time(d.due_at)})]));
    });
    var timeline = el("ol", {class: "timeline"});
    (in_.timeline || []).slice(-12).reverse().forEach(function (e) {
      timeline.appendChild(el("li", {text: SW.time(e.at) + " " + e.kind + (e.actor ? " · " + e.actor : "")}));
    });
    var who = el("select", {"aria-label": SW.t("assignWho")}, [el("option", {value: "", text: SW.t("assignWho")})]);
    responders.filter(function (r) { return r.available && !r.busy_incident; }).slice(0, 200).forEach(function (r) {
      who.appendChild(el("option", {value: r.id, text: r.name + " · " + (r.skills || []).join("/")}));
    });
    var actions = el("div", {class: "actions"}, [
      el("button", {type: "button", text: SW.t("redispatch"), onclick: function () { act(in_, "/redispatch", SW.t("redispatch")); }}),
      who,
      el("button", {type: "button", text: SW.t("assign"), onclick: function () { if (who.value) act(in_, "/assign", SW.t("assign"), {responder: who.value}); }}),
      el("button", {type: "button", class: "danger", text: SW.t("falseAlarm"), onclick: function () { act(in_, "/false-alarm", SW.t("falseAlarm")); }}),
      el("button", {type: "button", text: SW.t("markDrill"), onclick: function () { act(in_, "/mark-drill", SW.t("markDrill")); }}),
      el("button", {type: "button", text: SW.t("resolve"), onclick: function () { act(in_, "/resolve", SW.t("resolve")); }})
    ]);
    return el("article", {class: "card sev-" + in_.severity, id: "incident-" + in_.id, "data-incident": in_.id, "data-status": in_.status}, [
      head, el("p", {text: (in_.address || "") + " · " + SW.time(in_.opened_at)}),
      el("h3", {text: SW.t("offers")}), offers,
      el("h3", {text: SW.t("duties")}), duties,
      el("h3", {text: SW.t("timeline")}), timeline, actions]);
  }

  var sevOrder = {"I": 0, "II": 1, "III": 2, "IV": 3};
  function render() {
    var list = Object.keys(incidents).map(function (k) { return incidents[k]; });
    list.sort(function (a, b) { return (sevOrder[a.severity] - sevOrder[b.severity]) || (a.opened_at < b.opened_at ? 1 : -1); });
    var cards = $("cards");
    cards.innerHTML = "";
    list.forEach(function (i) { cards.appendChild(card(i)); });
    $("empty").classList.toggle("hidden", list.length > 0);
  }

  // drawMap plots incidents and available responders around the
  // community's centre on a plain 500 m grid: no tile server needed.
  function drawMap() {
    if (!community) return;
    var c = community.location, size = 400, span = 3000; // metres across
    var mPerLat = 111320, mPerLng = 111320 * Math.cos(c.lat * Math.PI / 180);
    function xy(p) { return [size / 2 + (p.lng - c.lng) * mPerLng / span * size, size / 2 - (p.lat - c.lat) * mPerLat / span * size]; }
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + size + " " + size);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", SW.t("map"));
    function add(tag, attrs) { var e = document.createElementNS(ns, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); svg.appendChild(e); return e; }
    for (var g = 0; g <= span; g += 500) {
      var p = g / span * size;
      add("line", {x1: p, y1: 0, x2: p, y2: size, stroke: "#ddd"});
      add("line", {x1: 0, y1: p, x2: size, y2: p, stroke: "#ddd"});
    }
    responders.forEach(function (r) {
      if (!r.available || r.busy_incident) return;
      var q = xy(r.location);
      add("circle", {cx: q[0], cy: q[1], r: 3, fill: "#0b57d0"}).appendChild(document.createElementNS(ns, "title")).textContent = r.name;
    });
    Object.keys(incidents).forEach(function (k) {
      var q = xy(incidents[k].location);
      add("circle", {cx: q[0], cy: q[1], r: 8, fill: "#c5221f", stroke: "#fff", "stroke-width": 2}).appendChild(document.createElementNS(ns, "title")).textContent = SW.label(incidents[k].type_label);
    });
    $("map").innerHTML = "";
    $("map").appendChild(svg);
  }

  function start(who) {
    me = who;
    if (!me || (me.role !== "dispatcher" && me.role !== "admin")) { $("signin").classList.remove("hidden"); return; }
    $("signin").classList.add("hidden");
    $("board").classList.remove("hidden");
    $("logout").classList.remove("hidden");
    $("who").textContent = (me.name || me.subject) + " · " + me.community;
    SW.stream("", function (ev) { refresh(ev.id); }, function (up) {
      $("live").className = "live " + (up ? "on" : "off");
      $("live").textContent = SW.t(up ? "online" : "offline");
      if (up) load(); // after a reconnect, catch up on what was missed
    });
    load();
  }

  SW.staffPage(start, function () { render(); drawMap(); });
})();
