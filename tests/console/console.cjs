// The console's browser scenarios, run by tests/console.rs against a live `dsrctl serve
// --listen`: headless Chromium (the system's, never a downloaded one) driven by
// playwright-core, axe-core on every page. Exits non-zero on the first failed expectation.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("BASE");
const SHOTS = env("SHOTS");
const OVERDUE = env("OVERDUE");
const LATER = env("LATER");
const PENDING = env("PENDING");
const FOREIGN = env("FOREIGN");
const EMAIL = env("SUBJECT_EMAIL");
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

function log(...args) {
  console.log(...args);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page: no serious or critical violation (WCAG 2.1 A and AA rules). */
async function accessible(page, name) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result.violations) {
    log(`  axe ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
  }
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `serious accessibility violations on ${name}`,
  );
}

/** Every interactive element is reachable with Tab (keyboard navigation). */
async function tabReaches(page, selector, max = 60) {
  await page.locator("body").focus();
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), selector)) {
      return;
    }
  }
  throw new Error(`Tab never reached ${selector}`);
}

async function signIn(context, token) {
  const page = await context.newPage();
  const resp = await page.goto(`${BASE}/console`);
  assert.equal(resp.status(), 200);
  assert.match(page.url(), /\/console\/login$/);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/console`);
  return page;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    // axe is injected as a script: bypass the console's CSP for that only.
    const ops = await browser.newContext({ bypassCSP: true, acceptDownloads: true, timezoneId: "Europe/Berlin" });

    // Sign-in page.
    {
      const page = await ops.newPage();
      await page.goto(`${BASE}/console/login`);
      await shot(page, "01-sign-in");
      await accessible(page, "sign-in");
      // A wrong token is refused, with a message.
      await page.getByLabel("API token").fill("not-a-token-0123456789");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("That is not a valid API token.").waitFor();
      await page.close();
    }

    // 1. Sign in, find the overdue request in the queue.
    const page = await signIn(ops, env("OPS_TOKEN"));
    const cookies = await ops.cookies();
    const session = cookies.find((c) => c.name === "dsrctl_console");
    assert.ok(session, "a session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, "Strict");
    const rows = page.locator("table.queue tbody tr");
    assert.equal(await rows.count(), 3, "t1's three requests, not t2's");
    const first = rows.nth(0);
    assert.equal(await first.locator("a").innerText(), OVERDUE, "overdue first");
    assert.match(await first.innerText(), /days overdue/);
    assert.match(await page.locator("ul.counts").innerText(), /1 overdue/);
    assert.equal(await page.getByText(FOREIGN).count(), 0);
    await shot(page, "02-queue");
    await accessible(page, "queue");
    await tabReaches(page, `a[href="/console/requests/${OVERDUE}"]`);
    // Filters.
    await page.getByLabel("Kind").selectOption("access");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/kind=access/);
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.nth(0).locator("a").innerText(), LATER);
    await page.getByRole("link", { name: "Clear" }).click();
    await page.waitForURL(`${BASE}/console`);

    // 2. Open it, approve it.
    await page.getByRole("link", { name: OVERDUE }).click();
    await page.waitForURL(`${BASE}/console/requests/${OVERDUE}`);
    assert.match(await page.locator("main").innerText(), new RegExp(EMAIL.replace(".", "\\.")), "operators see identities");
    await shot(page, "03-request");
    await accessible(page, "request");
    // The plan, as `dsrctl plan --offline` shows it.
    await page.getByRole("button", { name: "Show the plan" }).click();
    await page.waitForURL(`${BASE}/console/requests/${OVERDUE}/preview`);
    const plan = await page.locator("pre.plan").innerText();
    assert.match(plan, new RegExp(OVERDUE));
    assert.match(plan, /alerts/);
    await shot(page, "03b-plan-preview");
    await accessible(page, "plan preview");
    await page.getByRole("link", { name: "← Back to the request" }).click();
    await page.waitForURL(`${BASE}/console/requests/${OVERDUE}`);
    // The dry run: what each step would change, with its diff, as `dsrctl plan` shows it.
    await page.getByRole("button", { name: "Preview the changes" }).click();
    await page.waitForURL(/\/console\/runs\/[^/]+\/changes$/);
    const dryRunUrl = page.url();
    const changes = await page.locator("main").innerText();
    assert.match(changes, /Plan: [1-9]\d* to delete, 0 to update, 1 manual/, changes);
    assert.doesNotMatch(changes, /Incomplete|No changes/);
    assert.deepEqual(await page.locator("section.service h2").allInnerTexts(), ["things"]);
    assert.ok((await page.locator("pre.diff span.del").count()) > 0, "the deleted item's lines are shown removed");
    assert.match(changes, new RegExp(`Remove ${EMAIL.replace(".", "\\.")} from every alert`), "the manual step's instructions");
    await shot(page, "03c-dry-run-changes");
    await accessible(page, "dry run changes");
    await page.getByRole("link", { name: "← Back to the request" }).click();
    await page.waitForURL(`${BASE}/console/requests/${OVERDUE}`);
    assert.match(await page.locator("ul.runs").innerText(), /dry run/);
    await page.getByLabel("Reason for approving (optional)").fill("identity checked by phone");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByText("Approved. A worker starts the run").waitFor();
    assert.match(await page.locator("dl.facts").first().innerText(), /approved|running|waiting/);
    await shot(page, "04-request-approved");

    // 3. The manual task appears in My tasks; complete it with a file.
    let found = false;
    for (let i = 0; i < 150 && !found; i++) {
      await page.goto(`${BASE}/console/tasks`);
      found = (await page.locator("section.task").count()) > 0;
      if (!found) await page.waitForTimeout(200);
    }
    assert.ok(found, "the task appears within 30 s");
    const task = page.locator("section.task").first();
    assert.match(await task.innerText(), /things\/alerts/);
    assert.match(await task.innerText(), new RegExp(`Remove ${EMAIL.replace(".", "\\.")} from every alert`), "operators see the values");
    assert.match(await task.innerText(), /iot-ops/);
    await shot(page, "05-tasks");
    await accessible(page, "tasks");
    const evidence = Buffer.from(`alert list after removal, ${new Date().toISOString()}\n`);
    const digest = crypto.createHash("sha256").update(evidence).digest("hex");
    await task.getByLabel("Note on what was done").fill("removed from 3 alerts");
    await task.getByLabel("Evidence file").setInputFiles({ name: "alerts.txt", mimeType: "text/plain", buffer: evidence });
    await task.getByRole("button", { name: "Mark done" }).click();
    await page.waitForURL((u) => !u.pathname.endsWith("/tasks"));
    assert.match(page.url(), new RegExp(`/console/requests/${OVERDUE}\\?msg=task-done`), await page.content());
    await page.getByText("The task was recorded done").waitFor();
    await shot(page, "06-request-task-done");

    // 4. The run finishes; download the evidence report.
    let completed = false;
    for (let i = 0; i < 150 && !completed; i++) {
      await page.goto(`${BASE}/console/requests/${OVERDUE}`);
      completed = (await page.locator("dl.facts .state").first().innerText()) === "completed";
      if (!completed) await page.waitForTimeout(200);
    }
    assert.ok(completed, "the run completes within 30 s");
    const timeline = await page.locator("table.timeline").innerText();
    assert.match(timeline, /request\.approved/);
    assert.match(timeline, /api:ops/);
    assert.match(timeline, /task\.done/);
    assert.match(timeline, /step things\/drop/);
    await shot(page, "07-request-completed");
    await accessible(page, "request completed");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download the signed evidence report (JSON)" }).first().click(),
    ]);
    const file = await download.path();
    const report = fs.readFileSync(file, "utf8");
    JSON.parse(report);
    assert.ok(report.includes(digest), "the report names the uploaded evidence's SHA-256");
    assert.ok(!report.includes(EMAIL), "the evidence report holds no identity");
    const html = await page.request.get(`${BASE}/console/runs/${(await page.locator("ul.runs code").first().innerText())}/report`);
    assert.equal(html.status(), 200);
    assert.match(await html.text(), /<html/i);

    // 5. The audit log, verified.
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.waitForURL(`${BASE}/console/audit`);
    await page.getByText("Verified:").waitFor();
    assert.match(await page.locator("table.audit").innerText(), /task\.done/);
    assert.equal(await page.getByText(FOREIGN).count(), 0, "no entry of t2");
    await shot(page, "08-audit");
    await accessible(page, "audit");

    // 6. CSRF: a form posted without the token (or with another) is refused and does nothing.
    for (const form of [{ reason: "no token" }, { reason: "forged", csrf: "0".repeat(64) }]) {
      const resp = await page.request.post(`${BASE}/console/requests/${PENDING}/decline`, { form });
      assert.equal(resp.status(), 403, `decline with ${JSON.stringify(Object.keys(form))}`);
      assert.match(await resp.text(), /CSRF/);
    }
    const signin = await page.request.post(`${BASE}/console/login`, { form: { token: env("OPS_TOKEN") } });
    assert.equal(signin.status(), 403, "sign-in without its CSRF token");
    await page.goto(`${BASE}/console/requests/${PENDING}`);
    assert.equal(await page.locator("dl.facts .state").first().innerText(), "received", "nothing was declined");
    await shot(page, "09-request-received");

    // 6b. A task that could not be done: recorded failed with the reason.
    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByText("Approved. A worker starts the run").waitFor();
    let failing = null;
    for (let i = 0; i < 150 && !failing; i++) {
      await page.goto(`${BASE}/console/tasks`);
      const sections = page.locator("section.task", { hasText: PENDING });
      if ((await sections.count()) > 0) failing = sections.first();
      else await page.waitForTimeout(200);
    }
    assert.ok(failing, "the second task appears within 30 s");
    // Without a reason the browser does not submit (required); the server refuses it too.
    const csrf = await failing.locator('input[name="csrf"]').first().inputValue();
    const action = await failing.locator('form[action$="/fail"]').getAttribute("action");
    const noReason = await page.request.post(`${BASE}${action}`, { form: { csrf, reason: " " } });
    assert.equal(noReason.status(), 422);
    await failing.getByLabel("Why it could not be done (required)").fill("the IoT Central app was unreachable");
    await failing.getByRole("button", { name: "Mark failed" }).click();
    await page.waitForURL(new RegExp(`/console/requests/${PENDING}\\?msg=task-failed`));
    await page.getByText("The task was recorded failed.").waitFor();
    const failedTimeline = await page.locator("table.timeline").innerText();
    assert.match(failedTimeline, /task\.failed/);
    assert.match(failedTimeline, /the IoT Central app was unreachable/);

    // 7. Readable at 320 px: no sideways scrolling of the page itself.
    await page.setViewportSize({ width: 320, height: 800 });
    await page.goto(`${BASE}/console`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 320, `the queue is ${width}px wide at 320px`);
    await shot(page, "10-queue-320px");
    await page.goto(`${BASE}/console/requests/${OVERDUE}`);
    const width2 = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width2 <= 320, `a request is ${width2}px wide at 320px`);
    assert.ok(await page.locator("table.timeline td.detail").first().isVisible());
    await shot(page, "11-request-320px");
    await accessible(page, "request at 320px");

    // 8. Sign out ends the session on the server.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${BASE}/console/login`);
    const after = await page.request.get(`${BASE}/console/requests/${OVERDUE}`, { maxRedirects: 0 });
    assert.equal(after.status(), 303);
    await ops.close();

    // 9. Tenant isolation: t2's token cannot open t1's request by URL.
    const other = await browser.newContext({ bypassCSP: true });
    const p2 = await signIn(other, env("OTHER_TOKEN"));
    assert.equal(await p2.locator("table.queue tbody tr").count(), 1);
    const denied = await p2.goto(`${BASE}/console/requests/${OVERDUE}`);
    assert.equal(denied.status(), 404);
    assert.ok(!(await p2.content()).includes(EMAIL));
    await shot(p2, "12-other-tenant-404");
    await accessible(p2, "not found");
    const forged = await p2.request.get(`${BASE}/console/runs/nope/report`);
    assert.equal(forged.status(), 404);
    const foreignDryRun = await p2.request.get(dryRunUrl);
    assert.equal(foreignDryRun.status(), 404, "t2 cannot open t1's dry run");
    assert.ok(!(await foreignDryRun.text()).includes(EMAIL));
    await other.close();

    // 10. A role without personal data sees identities and instructions masked.
    const review = await browser.newContext({ bypassCSP: true });
    const p3 = await signIn(review, env("REVIEW_TOKEN"));
    await p3.goto(`${BASE}/console/requests/${LATER}`);
    const text = await p3.locator("main").innerText();
    assert.ok(!text.includes("bob@example.com"), "masked for approver/auditor");
    assert.match(text, /<string, 15 chars>/);
    await shot(p3, "13-request-masked");
    // The dry run's changes, masked for them too.
    await p3.goto(dryRunUrl);
    const maskedChanges = await p3.locator("main").innerText();
    assert.match(maskedChanges, /Plan: [1-9]\d* to delete/);
    assert.ok(!maskedChanges.includes(EMAIL), "dry run values masked for approver/auditor");
    await shot(p3, "13b-dry-run-masked");
    // Approvers may not record tasks: the forms are not offered, and a post is refused.
    await p3.goto(`${BASE}/console/tasks`);
    assert.equal(await p3.getByRole("button", { name: "Mark done" }).count(), 0);
    await review.close();

    log("all scenarios passed");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
