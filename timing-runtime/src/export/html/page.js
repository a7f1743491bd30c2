"use strict";
// Tables of class "sortable" sort by the column whose header is clicked (or focused and given Enter), on
// each cell's data-value when it has one (a number), on its text otherwise; a second click reverses.
function sortTable(table, column, descending) {
  const headers = Array.from(table.tHead.rows[0].cells);
  // A column the table no longer has (its allocation columns come and go with the allocator).
  if (column >= headers.length) return;
  headers.forEach((other) => other.removeAttribute("aria-sort"));
  headers[column].setAttribute("aria-sort", descending ? "descending" : "ascending");
  const key = (row) => {
    const cell = row.cells[column];
    return cell.dataset.value === undefined ? cell.textContent : Number(cell.dataset.value);
  };
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  });
  body.append(...rows);
}

function makeSortable(table) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.tabIndex = 0;
    const sort = () => {
      table.dataset.sorted = "by the reader";
      sortTable(table, column, header.getAttribute("aria-sort") !== "descending");
    };
    header.addEventListener("click", sort);
    header.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  });
}

// The column a table is sorted by and which way, to sort its next version the same way.
function sortState(table) {
  const headers = Array.from(table.tHead.rows[0].cells);
  const column = headers.findIndex((header) => header.hasAttribute("aria-sort"));
  return column < 0 ? null : {
    column,
    descending: headers[column].getAttribute("aria-sort") === "descending",
    byReader: table.dataset.sorted === "by the reader",
  };
}

document.querySelectorAll("table.sortable").forEach(makeSortable);

// A live page (served by `timing_runtime::serve`) asks for itself again once a second and puts the new
// header and sections in place of the old ones. Three failed asks in a row (the program stopped) say so,
// keep the last numbers and go on asking every five seconds; an answer makes the page live again.
if (document.body.dataset.live !== undefined) {
  const status = document.getElementById("live-status");
  const FLAMEGRAPH_EVERY_MS = 10000;
  const NEW_FOR_MS = 10000;
  let flamegraphAt = Date.now();
  let updates = 0;
  let failures = 0;
  let lastAnswer = new Date();
  const slowKey = (row) => Array.from(row.cells).slice(0, 3).map((cell) => cell.textContent).join("/");
  // When each slow step was first seen: the latest go on top, and are marked for a while.
  const firstSeen = new Map(Array.from(document.querySelectorAll("#slow-step-table tbody tr"), (row) => [slowKey(row), 0]));

  const replace = (next) => {
    const header = next.querySelector("header");
    if (header === null) throw new Error("the answer is not the run's page");
    document.querySelector("header").replaceWith(document.adoptNode(header));
    for (const section of next.querySelectorAll("section[id]")) {
      const current = document.getElementById(section.id);
      if (current === null) continue;
      // The flamegraph's frame reloads when replaced, losing its zoom: it follows less often.
      if (section.id === "call-tree") {
        if (Date.now() - flamegraphAt < FLAMEGRAPH_EVERY_MS) continue;
        flamegraphAt = Date.now();
      }
      const states = new Map();
      for (const table of current.querySelectorAll("table.sortable")) states.set(table.id, sortState(table));
      const fresh = document.adoptNode(section);
      current.replaceWith(fresh);
      for (const table of fresh.querySelectorAll("table.sortable")) {
        makeSortable(table);
        const state = states.get(table.id);
        if (state) {
          sortTable(table, state.column, state.descending);
          if (state.byReader) table.dataset.sorted = "by the reader";
        }
      }
    }
    const slow = document.getElementById("slow-step-table");
    if (slow !== null) {
      const body = slow.tBodies[0];
      const now = Date.now();
      for (const row of body.rows) {
        const key = slowKey(row);
        if (!firstSeen.has(key)) firstSeen.set(key, now);
        if (now - firstSeen.get(key) < NEW_FOR_MS) row.classList.add("new");
      }
      // Unless the reader chose an order: the latest first, the rest in the server's order.
      if (slow.dataset.sorted !== "by the reader") {
        const rows = Array.from(body.rows);
        const order = new Map(rows.map((row, index) => [row, index]));
        rows.sort((a, b) => firstSeen.get(slowKey(b)) - firstSeen.get(slowKey(a)) || order.get(a) - order.get(b));
        body.append(...rows);
      }
    }
  };

  const update = async () => {
    try {
      const response = await fetch(location.pathname, { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      replace(new DOMParser().parseFromString(await response.text(), "text/html"));
      failures = 0;
      lastAnswer = new Date();
      updates += 1;
      document.body.dataset.live = "";
      document.body.dataset.updates = String(updates);
      status.classList.remove("stopped");
      status.textContent = `Live: updated once a second, last at ${lastAnswer.toLocaleTimeString()}.`;
    } catch {
      failures += 1;
      if (failures >= 3) {
        document.body.dataset.live = "stopped";
        status.classList.add("stopped");
        status.textContent = `The program has stopped: no answer since ${lastAnswer.toLocaleTimeString()}. ` +
          "These are its last numbers.";
      }
    }
    setTimeout(update, failures >= 3 ? 5000 : 1000);
  };
  setTimeout(update, 1000);
}
