// The demo page: renders the boards and keeps them current from the
// subscription-update messages that rohrpost_signals sends on every save.
(function () {
  "use strict";

  var connectionEl = document.getElementById("connection");
  var csrfInput = document.querySelector("[name=csrfmiddlewaretoken]");

  // What happened, for people (the activity panel) and for the browser tests.
  var demo = (window.rohrpostDemo = {
    client: null,
    updates: [], // every subscription-update's data, in arrival order
    refused: [], // groups the server refused
    resubscribed: 0, // re-subscribe rounds completed after reconnects
    resumed: [], // groups picked up again after a reconnect by a replay of what was missed
    resyncs: [], // groups the server could not replay (resync-required): reloaded instead
    synced: 0, // snapshot loads completed (after a subscribe that could not resume)
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setConnection(state, text) {
    if (!connectionEl) return;
    connectionEl.dataset.state = state;
    connectionEl.textContent = text;
  }

  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfInput ? csrfInput.value : "" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response;
    });
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        var error = new Error(response.status + " " + response.statusText);
        error.status = response.status;
        throw error;
      }
      return response.json();
    });
  }

  function flash(node) {
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }

  var activityEl = document.getElementById("activity");

  function logActivity(text, kind) {
    if (!activityEl) return;
    var item = el("li", kind || "");
    item.appendChild(el("time", "", new Date().toLocaleTimeString()));
    item.appendChild(document.createTextNode(" " + text));
    activityEl.insertBefore(item, activityEl.firstChild);
    while (activityEl.children.length > 12) activityEl.removeChild(activityEl.lastChild);
  }

  function describe(data) {
    var object = data.object || {};
    var what = object.title !== undefined ? "“" + object.title + "”" : object.name !== undefined ? "“" + object.name + "”" : "#" + object.id;
    var fields = object.updated_fields ? " (" + object.updated_fields.join(", ") + ")" : "";
    return data.type + " " + what + fields + " on " + data.group;
  }

  function connect(path) {
    var client = new RohrpostClient(path);
    demo.client = client;
    client.on("open", function () { setConnection("live", "live"); });
    client.on("closed", function () { setConnection("offline", "offline"); });
    client.on("reconnecting", function (info) {
      setConnection("offline", "reconnecting in " + Math.ceil(info.delay / 1000) + " s…");
    });
    client.on("resubscribed", function (result) {
      demo.resubscribed += 1;
      Array.prototype.push.apply(demo.resumed, result.resumed);
      logActivity(
        "reconnected; subscribed again to " + result.groups.length + " groups, " +
          result.resumed.length + " resumed where they left off",
        "system"
      );
    });
    client.on("resync-required", function (info) {
      demo.resyncs.push(info.group);
      logActivity("missed too much on " + info.group + ": reloading", "system");
    });
    client.on("subscription-update", function (data) {
      demo.updates.push(data);
      logActivity(describe(data), data.type);
    });
    client.on("unsubscribed", function (info) {
      demo.refused.push(info.group);
      logActivity("the server ended " + info.group + " (" + info.reason + ")", "error");
    });
    client.on("error", function (error) {
      if (error.group) demo.refused.push(error.group);
      logActivity("error: " + error.message, "error");
    });
    return client;
  }

  function subscribe(client, group, onSubscribed) {
    return client.subscribe({ group: group }).then(onSubscribed, function (error) {
      demo.refused.push(group);
      logActivity("refused: " + group + ": " + error.message, "error");
    });
  }

  // ------------------------------------------------------------ board page

  function boardPage(root, state) {
    var statuses = state.statuses; // [[value, label], ...]
    var views = new Map(); // board id -> view

    function labelOf(status) {
      for (var i = 0; i < statuses.length; i++) if (statuses[i][0] === status) return statuses[i][1];
      return status;
    }

    function fillCard(item, card) {
      item.dataset.status = card.status;
      item.querySelector(".card-title").textContent = card.title;
      item.querySelector(".card-title").href = "/cards/" + card.id + "/";
      var assignee = item.querySelector(".card-assignee");
      assignee.textContent = card.assignee || "unassigned";
      assignee.classList.toggle("unassigned", !card.assignee);
      var actions = item.querySelector(".card-actions");
      actions.textContent = "";
      statuses.forEach(function (entry) {
        if (entry[0] === card.status) return;
        var button = el("button", "move", "→ " + entry[1]);
        button.type = "button";
        button.dataset.move = entry[0];
        actions.appendChild(button);
      });
      var remove = el("button", "delete", "×");
      remove.type = "button";
      remove.title = "Delete card";
      actions.appendChild(remove);
    }

    function cardElement(card) {
      var item = el("li", "card");
      item.dataset.cardId = card.id;
      item.appendChild(el("a", "card-title"));
      item.appendChild(el("span", "card-assignee"));
      item.appendChild(el("div", "card-actions"));
      fillCard(item, card);
      return item;
    }

    // Cards stay in id order within their column.
    function place(view, item, status) {
      var list = view.lists[status];
      if (!list) return;
      var id = Number(item.dataset.cardId);
      var before = null;
      for (var i = 0; i < list.children.length; i++) {
        if (Number(list.children[i].dataset.cardId) > id) {
          before = list.children[i];
          break;
        }
      }
      if (item.parentNode !== list || item.nextSibling !== before) list.insertBefore(item, before);
    }

    function updateCounts(view) {
      Object.keys(view.lists).forEach(function (status) {
        view.counts[status].textContent = String(view.lists[status].children.length);
      });
    }

    function applyCard(view, kind, card) {
      var item = view.section.querySelector('[data-card-id="' + card.id + '"]');
      if (kind === "delete") {
        if (item) item.remove();
      } else {
        if (!item) item = cardElement(card);
        else fillCard(item, card);
        place(view, item, card.status);
        flash(item);
      }
      updateCounts(view);
    }

    function renderCards(view, board) {
      view.name.textContent = board.name;
      Object.keys(view.lists).forEach(function (status) { view.lists[status].textContent = ""; });
      board.cards.forEach(function (card) { place(view, cardElement(card), card.status); });
      updateCounts(view);
    }

    function renderBoard(board) {
      var section = el("section", "board");
      section.dataset.boardId = board.id;
      var heading = el("div", "board-heading");
      var name = el("h2", "board-name", board.name);
      heading.appendChild(name);
      var form = el("form", "add-card");
      var input = el("input");
      input.name = "title";
      input.placeholder = "New card…";
      input.required = true;
      input.maxLength = 200;
      form.appendChild(input);
      form.appendChild(el("button", "", "Add"));
      heading.appendChild(form);
      section.appendChild(heading);
      var columns = el("div", "columns");
      var view = { id: board.id, section: section, name: name, lists: {}, counts: {}, buffer: null, loading: null, reloadAgain: false };
      statuses.forEach(function (entry) {
        var column = el("div", "column");
        column.dataset.status = entry[0];
        var title = el("h3", "", entry[1] + " ");
        view.counts[entry[0]] = el("span", "count", "0");
        title.appendChild(view.counts[entry[0]]);
        column.appendChild(title);
        view.lists[entry[0]] = el("ul", "cards");
        column.appendChild(view.lists[entry[0]]);
        columns.appendChild(column);
      });
      section.appendChild(columns);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        // No optimistic insert: the card shows up when its "create" arrives.
        post("/boards/" + board.id + "/cards/", { title: input.value }).then(function () {
          input.value = "";
        }, function (error) { logActivity("could not add: " + error.message, "error"); });
      });
      section.addEventListener("click", function (event) {
        var button = event.target.closest("button");
        var item = event.target.closest(".card");
        if (!button || !item) return;
        var url = "/cards/" + item.dataset.cardId;
        var request = button.dataset.move ? post(url + "/move/", { status: button.dataset.move }) : post(url + "/delete/");
        request.catch(function (error) { logActivity("could not change the card: " + error.message, "error"); });
      });
      renderCards(view, board);
      root.appendChild(section);
      views.set(board.id, view);
      return view;
    }

    // Load the board's current state once subscribed, so that nothing changed
    // between the page load and the subscription is missed, and again when
    // the server could not replay what an outage missed (resync-required).
    // Updates arriving meanwhile wait and are applied on top of the snapshot.
    // A reload asked for while one is under way runs once that one is done:
    // the running one may have read the database too early.
    function sync(view) {
      if (view.loading) {
        view.reloadAgain = true;
        return view.loading;
      }
      view.buffer = view.buffer || [];
      view.loading = getJson("/boards/" + view.id + ".json").then(function (board) {
        view.loading = null;
        if (view.reloadAgain) {
          view.reloadAgain = false;
          return sync(view);
        }
        renderCards(view, board);
        var waiting = view.buffer;
        view.buffer = null;
        waiting.forEach(function (data) { handle(view, data); });
        demo.synced += 1;
      }, function (error) {
        view.loading = null;
        view.reloadAgain = false;
        view.buffer = null;
        if (error.status === 404) removeBoard(view);
      });
      return view.loading;
    }

    function groupsOf(view) {
      return ["board-" + view.id + "-cards", "board-" + view.id];
    }

    function viewOf(group) {
      var match = /^board-(\d+)(-cards)?$/.exec(group || "");
      return match ? views.get(Number(match[1])) : undefined;
    }

    function removeBoard(view) {
      view.section.remove();
      views.delete(view.id);
      demo.client.unsubscribe({ group: "board-" + view.id + "-cards" });
      demo.client.unsubscribe({ group: "board-" + view.id });
    }

    function handle(view, data) {
      if (view.buffer) {
        view.buffer.push(data);
        return;
      }
      if (data.group === "board-" + view.id) {
        if (data.type === "delete") removeBoard(view);
        else {
          view.name.textContent = data.object.name;
          flash(view.name);
        }
      } else {
        applyCard(view, data.type, data.object);
      }
    }

    state.boards.forEach(renderBoard);
    if (state.boards.length === 0) {
      root.appendChild(el("p", "empty", "You are not a member of any board yet. An admin can add you to one."));
    }

    var client = connect(root.dataset.wsPath);
    client.on("subscription-update", function (data) {
      var view = viewOf(data.group);
      if (view) handle(view, data);
    });
    // After a reconnect the client resumes each group where it left off and
    // the server replays what was missed: nothing to reload. Only boards with
    // a group that could not resume (a server without sequence numbers) are
    // loaded again here; resync-required covers the rest.
    client.on("resubscribed", function (result) {
      views.forEach(function (view) {
        var resumed = groupsOf(view).every(function (group) { return result.resumed.indexOf(group) !== -1; });
        if (!resumed) sync(view);
      });
    });
    client.on("resync-required", function (info) {
      var view = viewOf(info.group);
      if (view) sync(view);
    });
    views.forEach(function (view) {
      subscribe(client, "board-" + view.id + "-cards", function () { sync(view); });
      subscribe(client, "board-" + view.id);
    });
  }

  // ------------------------------------------------------------- card page

  function cardPage(root, state) {
    var group = "card-" + root.dataset.cardId;
    var statuses = new Map(state.statuses);

    function show(card) {
      root.querySelector(".card-title").textContent = card.title;
      root.querySelector(".card-status").textContent = statuses.get(card.status) || card.status;
      root.querySelector(".card-assignee").textContent = card.assignee || "nobody";
      flash(root);
    }

    function deleted() {
      root.classList.add("deleted");
      root.querySelector(".deleted-note").hidden = false;
    }

    function sync() {
      getJson("/cards/" + root.dataset.cardId + ".json").then(function (card) {
        show(card);
        demo.synced += 1;
      }, function (error) {
        if (error.status === 404) deleted();
      });
    }

    var client = connect(root.dataset.wsPath);
    client.on(group, function (data) {
      if (data.type === "delete") deleted();
      else show(data.object);
    });
    client.on("resubscribed", function (result) {
      if (result.resumed.indexOf(group) === -1) sync();
    });
    client.on("resync-required", function (info) {
      if (info.group === group) sync();
    });
    subscribe(client, group, sync);
  }

  var boardsRoot = document.getElementById("boards");
  var cardRoot = document.getElementById("card-detail");
  if (boardsRoot) boardPage(boardsRoot, JSON.parse(document.getElementById("board-state").textContent));
  if (cardRoot) cardPage(cardRoot, JSON.parse(document.getElementById("card-state").textContent));
})();
