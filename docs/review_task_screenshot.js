// How docs/review_task.png was taken: headless Chromium through playwright-core (npm install playwright-core).
// LS_URL=http://127.0.0.1:PORT LS_PASSWORD=... LS_PROJECT=ID LS_TASK=ID node docs/review_task_screenshot.js
const { chromium } = require('playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto('' + (process.env.LS_URL || 'http://127.0.0.1:8080') + '/user/login/');
  await page.fill('input[name=email]', 'reviewer@example.com');
  await page.fill('input[name=password]', '' + process.env.LS_PASSWORD + '');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.goto('' + (process.env.LS_URL || 'http://127.0.0.1:8080') + '/projects/' + process.env.LS_PROJECT + '/data?task=' + process.env.LS_TASK + '');
  await page.waitForSelector('text=What each teacher said', { timeout: 60000 });
  await page.waitForTimeout(4000);
  await page.screenshot({ path: 'docs/review_task.png', fullPage: false });
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
