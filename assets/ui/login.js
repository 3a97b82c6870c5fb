// The sign-in page: a password for the browser session (the refresh token goes into an
// HttpOnly cookie), then the browser.
import { refresh, signIn, signInWithKey } from './session.js';

const form = document.getElementById('form');
const error = document.getElementById('error');
// Already signed in: straight on.
refresh().then((user) => { if (user) window.location.replace('/ui/'); });
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.textContent = '';
  document.getElementById('submit').disabled = true;
  try {
    await signIn(form.email.value, form.password.value);
    window.location.replace('/ui/');
  } catch (err) {
    error.textContent = err.message;
    form.password.focus();
  } finally {
    document.getElementById('submit').disabled = false;
  }
});
document.getElementById('key-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = document.getElementById('key-error');
  err.textContent = '';
  try {
    await signInWithKey(document.getElementById('api-key').value);
    window.location.replace('/ui/');
  } catch (x) {
    err.textContent = x.message;
  }
});
