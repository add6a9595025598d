/* global document, location, history, addEventListener */
// The demo's single-page app: links marked data-spa change the address with history.pushState, without a load.
const titles = { '/app/': 'Overview', '/app/reports': 'Reports', '/app/settings': 'Settings' };
const render = () => {
  document.getElementById('view').textContent = titles[location.pathname] ?? 'Not found';
};
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-spa]');
  if (!link) return;
  event.preventDefault();
  history.pushState({}, '', link.getAttribute('href'));
  render();
});
addEventListener('popstate', render);
render();
