// The captioning console: four screens over the console's /api routes, with the key the user typed.
'use strict';

const STEPS = ['received', 'captioned', 'moderated', 'indexed'];
const SCREENS = { upload: 'uploader', search: 'uploader', review: 'reviewer', 'dead-letters': 'operator' };
const NEEDS = { uploader: 'an API key', reviewer: 'a reviewer key', operator: 'an operator key' };
const LANGUAGES = { en: 'English', ko: '한국어' };
const REOPEN_AFTER_MS = 3000;

const state = {
  key: sessionStorage.getItem('console-key') || '',
  roles: [],
  name: '',
  cards: new Map(), // image id -> card element
  stream: null, // AbortController of the one live stream
  reopen: null,
  screen: '',
  letterLoads: 0, // loads of the dead-letter list started: only the newest may render
};

const $ = (selector, root = document) => root.querySelector(selector);

// An element with attributes (on* as listeners) and children (strings become text).
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function notice(text, isError = false) {
  const element = $('#notice');
  element.textContent = text;
  element.classList.toggle('error', isError);
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { 'X-API-Key': state.key, ...(options.headers || {}) } });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiFailure(response.status, error.code || 'http_' + response.status, error.message || response.statusText);
  }
  return { status: response.status, body };
}

// ---- sign-in and screens ----

async function signIn(key) {
  state.key = key;
  try {
    const { body } = await api('/api/session');
    state.roles = body.roles;
    state.name = body.name;
    sessionStorage.setItem('console-key', key);
  } catch (error) {
    signOut();
    notice(error.status === 401 ? 'This key is not known.' : `Sign-in failed: ${error.message}`, true);
    return;
  }
  const kinds = state.roles.map((role) => NEEDS[role].replace(/^an? /, '')).join(', ');
  $('#who-text').textContent = `Signed in${state.name ? ' as ' + state.name : ''} (${kinds})`;
  $('#who').hidden = false;
  $('#sign-in').hidden = true;
  for (const link of document.querySelectorAll('#nav a')) {
    link.parentElement.hidden = !state.roles.includes(link.dataset.role);
  }
  notice('');
  if (!location.hash || !showScreen(location.hash.slice(1))) {
    location.hash = Object.keys(SCREENS).find((screen) => state.roles.includes(SCREENS[screen]));
  }
  followStream();
}

function signOut() {
  state.key = '';
  state.roles = [];
  state.name = '';
  sessionStorage.removeItem('console-key');
  if (state.stream) state.stream.abort();
  state.stream = null;
  $('#who').hidden = true;
  $('#sign-in').hidden = false;
  for (const link of document.querySelectorAll('#nav a')) link.parentElement.hidden = false;
  showSection('signed-out');
}

function showSection(name) {
  for (const section of document.querySelectorAll('.screen')) section.hidden = section.id !== 'screen-' + name;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === '#' + name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// Shows a screen the key may see (true), or says which key it needs.
function showScreen(name) {
  if (!(name in SCREENS)) return false;
  if (!state.key) {
    showSection('signed-out');
    return true;
  }
  const role = SCREENS[name];
  if (!state.roles.includes(role)) {
    $('#denied-text').textContent = `This screen needs ${NEEDS[role]}; the key you signed in with is not one.`;
    showSection('denied');
    $('#h-denied').focus();
    return true;
  }
  state.screen = name;
  showSection(name);
  $('#h-' + name).focus();
  if (name === 'review') loadQueue();
  if (name === 'dead-letters') loadTopics();
  return true;
}

// ---- the live stream: server-sent events, one stream for the followed images and the review queue ----

function followStream() {
  clearTimeout(state.reopen);
  state.reopen = setTimeout(openStream, 50);
}

async function openStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  const ids = [...state.cards.keys()];
  const queue = state.roles.includes('reviewer');
  if (!state.key || (!ids.length && !queue)) return;
  const controller = new AbortController();
  state.stream = controller;
  const query = new URLSearchParams();
  if (ids.length) query.set('ids', ids.join(','));
  if (queue) query.set('queue', 'true');
  try {
    const response = await fetch('/api/events?' + query, { headers: { 'X-API-Key': state.key }, signal: controller.signal });
    if (!response.ok) throw new Error('the live stream was refused: ' + response.status);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        handleEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  if (state.stream === controller) state.reopen = setTimeout(openStream, REOPEN_AFTER_MS); // dropped: open it again
}

function handleEvent(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  const payload = JSON.parse(data);
  if (event === 'image') showImage(payload.image);
  else if (event === 'queue' && state.screen === 'review') loadQueue();
  else if (event === 'error') notice(`Live updates stopped: ${payload.message}`, true);
}

// ---- upload and watch ----

function newCard(file) {
  const card = h('li', { class: 'card', dataset: { status: 'uploading' } },
    h('img', { src: URL.createObjectURL(file), alt: `${file.name} (no caption yet)` }),
    h('div', { class: 'card-body' },
      h('h3', {}, file.name),
      h('ol', { class: 'steps', 'aria-label': 'Progress' }, STEPS.map((step) => h('li', { dataset: { step } }, step))),
      h('p', { class: 'status' }, 'uploading…'),
      h('dl', { class: 'captions' },
        h('dt', {}, 'English'), h('dd', { class: 'caption-en', lang: 'en' }, '…'),
        h('dt', {}, '한국어'), h('dd', { class: 'caption-ko', lang: 'ko' }, '…')),
      h('p', { class: 'tags keywords' }),
      h('p', { class: 'tags hashtags' }),
      h('p', { class: 'verdict' }),
      h('p', { class: 'failure' })));
  $('#cards').prepend(card);
  return card;
}

async function upload(file) {
  const card = newCard(file);
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const { body } = await api('/api/images', { method: 'POST', body: form });
    const existing = state.cards.get(body.id);
    if (existing && existing !== card) {
      card.remove();
      existing.querySelector('.status').textContent += ' (uploaded again: the same image)';
      return;
    }
    card.dataset.id = body.id;
    state.cards.set(body.id, card);
    if (body.captions) {
      showImage(body); // known already: its whole record came back
    } else {
      card.dataset.status = 'received';
      $('.status', card).textContent = 'received';
      markSteps(card, 'received');
    }
    followStream();
  } catch (error) {
    card.dataset.status = 'failed';
    $('.status', card).textContent = 'refused';
    $('.failure', card).textContent = `${error.code}: ${error.message}`;
    $('.steps li', card).classList.add('failed');
  }
}

function markSteps(card, status) {
  const reached = STEPS.indexOf(status);
  for (const item of card.querySelectorAll('.steps li')) {
    const index = STEPS.indexOf(item.dataset.step);
    item.classList.toggle('done', index >= 0 && index <= reached);
    if (index === reached) item.setAttribute('aria-current', 'step');
    else item.removeAttribute('aria-current');
  }
}

function statusText(view) {
  if (view.status === 'failed') return `failed at ${view.failure ? view.failure.stage : 'a stage'}`;
  if (view.verdict === 'review' && view.status !== 'indexed') return 'held for review';
  if (view.verdict === 'reject') return 'rejected by moderation';
  return view.status;
}

function showImage(view) {
  const card = state.cards.get(view.id);
  if (!card) return;
  card.dataset.status = view.status;
  card.dataset.verdict = view.verdict || '';
  markSteps(card, view.status === 'failed' ? 'received' : view.status);
  if (view.status === 'failed') card.querySelector('.steps li:last-child').classList.add('failed');
  $('.status', card).textContent = statusText(view);
  for (const language of ['en', 'ko']) {
    const caption = view.captions[language];
    $('.caption-' + language, card).textContent = caption ? caption.text : (view.status === 'received' ? '…' : '—');
  }
  const alt = (view.captions.en || view.captions.ko || {}).text;
  if (alt) $('img', card).alt = alt;
  $('.keywords', card).textContent = view.keywords.length ? 'Keywords: ' + view.keywords.join(', ') : '';
  $('.hashtags', card).textContent = view.hashtags.join(' ');
  const reasons = (view.moderation_reasons || []).map((r) => `${r.code} (${r.score.toFixed(2)})`).join(', ');
  $('.verdict', card).textContent = view.verdict ? `Verdict: ${view.verdict}${reasons ? ' — ' + reasons : ''}` : '';
  $('.failure', card).textContent = view.failure ? `${view.failure.code}: ${view.failure.reason}` : '';
}

function setUpUpload() {
  const drop = $('#drop');
  const input = $('#files');
  input.addEventListener('change', () => {
    [...input.files].forEach(upload);
    input.value = '';
  });
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    [...event.dataTransfer.files].filter((file) => file.type.startsWith('image/') || !file.type).forEach(upload);
  });
}

// ---- search ----

async function search(event) {
  event.preventDefault();
  const q = $('#q').value.trim();
  const lang = $('#lang').value;
  const results = $('#results');
  results.replaceChildren();
  $('#search-summary').textContent = 'Searching…';
  try {
    const { body } = await api('/api/search?' + new URLSearchParams({ q, lang, limit: '24' }));
    $('#search-summary').textContent = `${body.results.length} result${body.results.length === 1 ? '' : 's'} for “${q}”`;
    for (const hit of body.results) {
      results.append(h('li', {},
        h('button', { type: 'button', class: 'result', dataset: { id: hit.id }, onclick: () => showRecord(hit) },
          h('img', { src: hit.image_url, alt: hit.caption || 'an image without a caption', loading: 'lazy' }),
          h('span', { class: 'caption', lang }, hit.caption),
          h('span', { class: 'score' }, `score ${hit.score.toFixed(4)}`))));
    }
  } catch (error) {
    $('#search-summary').textContent = `Search failed: ${error.message}`;
  }
}

async function showRecord(hit) {
  const dialog = $('#record');
  const body = $('#record-body');
  body.replaceChildren(h('p', {}, 'Loading…'));
  $('#record-title').textContent = hit.caption || hit.id;
  dialog.showModal();
  try {
    const { body: view } = await api('/api/images/' + hit.id);
    const fields = [
      ['Id', view.id], ['Status', view.status], ['Verdict', view.verdict],
      ...Object.entries(view.captions).map(([language, caption]) => [`Caption (${LANGUAGES[language] || language})`, caption.text]),
      ['Keywords', view.keywords.join(', ')], ['Hashtags', view.hashtags.join(' ')],
      ['Tags', (view.tags || []).map((tag) => tag.label).join(', ')], ['Objects', (view.objects || []).map((o) => `${o.label} ×${o.count}`).join(', ')],
      ['Text in the image', (view.text_lines || []).map((line) => line.text).join(' | ')],
      ['Size', `${view.width} × ${view.height}, ${view.content_type}`], ['Model', view.model ? `${view.model.name} ${view.model.version}` : ''],
      ['Received', view.received_at], ['Indexed', view.indexed_at || ''],
    ].filter(([, value]) => value);
    body.replaceChildren(
      h('img', { src: hit.image_url, alt: hit.caption || 'the image' }),
      h('dl', { class: 'record-fields' }, fields.map(([name, value]) => [h('dt', {}, name), h('dd', {}, value)])),
      h('details', {}, h('summary', {}, 'Whole record (JSON)'), h('pre', {}, JSON.stringify(view, null, 2))));
  } catch (error) {
    body.replaceChildren(h('p', { class: 'failure' }, `Could not read the record: ${error.message}`));
  }
}

// ---- review queue ----

async function loadQueue() {
  const list = $('#queue');
  try {
    const { body } = await api('/api/review-queue');
    const focused = document.activeElement && document.activeElement.closest('.item');
    const keep = focused ? focused.dataset.id : null;
    list.replaceChildren(...body.items.map((item, index) => queueItem(item, index, body.items.length)));
    $('#review-summary').textContent = body.items.length ? `${body.items.length} held item${body.items.length === 1 ? '' : 's'}` : 'Nothing is held for review.';
    const again = keep && list.querySelector(`[data-id="${keep}"]`);
    if (again) again.focus();
  } catch (error) {
    list.replaceChildren();
    $('#review-summary').textContent = `The queue could not be read: ${error.message}`;
  }
}

function queueItem(item, index, count) {
  const languages = [...new Set([...Object.keys(item.written), ...Object.keys(item.released)])];
  const released = item.released.en || item.released.ko || {};
  return h('li', { class: 'item', tabindex: '0', dataset: { id: item.id }, 'aria-label': `Held item ${index + 1} of ${count}: ${released.text || item.id}` },
    h('img', { src: item.image_url, alt: released.text || 'the held image' }),
    h('div', {},
      h('h3', {}, item.id.slice(0, 12)),
      h('table', { class: 'compare' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Language'), h('th', { scope: 'col' }, 'As the model wrote it'), h('th', { scope: 'col' }, 'As released'))),
        h('tbody', {}, languages.map((language) => {
          const written = (item.written[language] || {}).text || '—';
          const out = (item.released[language] || {}).text || '—';
          return h('tr', { class: written === out ? '' : 'changed' },
            h('th', { scope: 'row' }, LANGUAGES[language] || language), h('td', { lang: language }, written), h('td', { lang: language }, out));
        }))),
      h('ul', { class: 'reasons', 'aria-label': 'Reasons' },
        item.reasons.map((reason) => h('li', {}, `${reason.code}: ${reason.detail} (score ${reason.score.toFixed(2)})`))),
      h('div', { class: 'decide' },
        h('label', { for: 'note-' + item.id }, 'Note'),
        h('input', { id: 'note-' + item.id, class: 'note', type: 'text', maxlength: '2000' }),
        h('button', { type: 'button', class: 'approve', 'aria-keyshortcuts': 'A', onclick: () => decide(item.id, 'approve') }, 'Approve (A)'),
        h('button', { type: 'button', class: 'reject', 'aria-keyshortcuts': 'R', onclick: () => decide(item.id, 'reject') }, 'Reject (R)'))));
}

async function decide(imageId, verdict) {
  const item = $(`#queue [data-id="${imageId}"]`);
  if (!item) return;
  const note = $('.note', item).value;
  for (const button of item.querySelectorAll('button')) button.disabled = true;
  try {
    const { body } = await api('/api/reviews/' + imageId, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ verdict, note }),
    });
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    notice(`${verdict === 'approve' ? 'Approved' : 'Rejected'} ${imageId.slice(0, 12)} as ${body.reviewer}.`);
    const left = $('#queue').children.length;
    $('#review-summary').textContent = left ? `${left} held item${left === 1 ? '' : 's'}` : 'Nothing is held for review.';
    if (next) next.focus();
  } catch (error) {
    for (const button of item.querySelectorAll('button')) button.disabled = false;
    notice(`The decision was not taken: ${error.message}`, true);
  }
}

function onQueueKey(event) {
  if (event.target.matches('input, textarea, select') || event.ctrlKey || event.metaKey || event.altKey) return;
  const item = event.target.closest('.item');
  const items = [...$('#queue').children];
  const key = event.key.toLowerCase();
  let move = 0;
  if (key === 'j' || key === 'arrowdown') move = 1;
  else if (key === 'k' || key === 'arrowup') move = -1;
  if (move) {
    const target = items[Math.max(0, Math.min(items.length - 1, items.indexOf(item) + move))] || items[0];
    if (target) target.focus();
    event.preventDefault();
    return;
  }
  if (!item) return;
  if (key === 'a') decide(item.dataset.id, 'approve');
  else if (key === 'r') decide(item.dataset.id, 'reject');
  else if (key === 'n') $('.note', item).focus();
  else return;
  event.preventDefault();
}

// ---- dead letters ----

async function loadTopics() {
  const select = $('#dlq-topic');
  const chosen = select.value;
  try {
    const { body } = await api('/api/dead-letters');
    select.replaceChildren(...body.topics.map((topic) => h('option', { value: topic.topic }, `${topic.topic} (${topic.records})`)));
    const busiest = body.topics.reduce((best, topic) => (topic.records > (best ? best.records : -1) ? topic : best), null);
    select.value = body.topics.some((t) => t.topic === chosen) ? chosen : (busiest ? busiest.topic : '');
    await loadLetters();
  } catch (error) {
    $('#dlq-summary').textContent = `The dead-letter topics could not be read: ${error.message}`;
  }
}

async function loadLetters() {
  const topic = $('#dlq-topic').value;
  const rows = $('#letters tbody');
  if (!topic) return;
  const load = ++state.letterLoads;
  $('#dlq-summary').textContent = 'Reading…';
  try {
    const { body } = await api('/api/dead-letters/' + encodeURIComponent(topic));
    if (load !== state.letterLoads || $('#dlq-topic').value !== topic) return; // a newer load is under way
    // The operator's picks survive a refresh: the same letter of the same topic stays selected.
    const picked = new Set([...rows.querySelectorAll('.pick:checked')]
      .filter((box) => box.dataset.topic === topic).map((box) => `${box.dataset.partition}:${box.dataset.offset}`));
    rows.replaceChildren(...body.letters.map((letter) => letterRow(letter, topic, picked)));
    $('#select-all').checked = false;
    $('#dlq-summary').textContent = `${topic}: ${body.records} record${body.records === 1 ? '' : 's'}, the newest ${body.letters.length} shown`;
  } catch (error) {
    if (load !== state.letterLoads) return;
    rows.replaceChildren();
    $('#dlq-summary').textContent = `The dead letters could not be read: ${error.message}`;
  }
}

function letterRow(letter, topic, picked) {
  const position = `${letter.partition}:${letter.offset}`;
  const replayable = letter.code !== 'not_a_dead_letter';
  return h('tr', { dataset: { position, key: letter.key || '' } },
    h('td', {}, h('input', {
      type: 'checkbox', class: 'pick', 'aria-label': `Select the letter at ${position}`,
      dataset: { topic, partition: letter.partition, offset: letter.offset }, disabled: !replayable,
      checked: replayable && picked.has(position),
    })),
    h('td', {}, position),
    h('td', {}, letter.stage || ''),
    h('td', {}, h('code', {}, letter.code)),
    h('td', { class: 'message' }, letter.message),
    h('td', { class: 'key' }, letter.image_id ? letter.image_id.slice(0, 12) : (letter.key || '')),
    h('td', {}, letter.failed_at ? letter.failed_at.replace('T', ' ').slice(0, 19) : ''));
}

async function replaySelected(event) {
  event.preventDefault();
  const topic = $('#dlq-topic').value;
  const picked = [...document.querySelectorAll('#letters .pick:checked')];
  if (!picked.length) {
    notice('Select the letters to replay first.', true);
    return;
  }
  const records = picked.map((box) => ({ partition: Number(box.dataset.partition), offset: Number(box.dataset.offset) }));
  $('#replay').disabled = true;
  try {
    const { body } = await api(`/api/dead-letters/${encodeURIComponent(topic)}/replay`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ records }),
    });
    notice(`Replayed ${body.replayed} of ${body.chosen} to ${topic.replace(/\.dlq$/, '')}` +
      (body.skipped + body.wrong_source + body.unreadable ? ` (skipped ${body.skipped}, wrong source ${body.wrong_source}, original unreadable ${body.unreadable})` : '') + '.');
  } catch (error) {
    notice(`The replay failed: ${error.message}`, true);
  } finally {
    $('#replay').disabled = false;
  }
}

// ---- start ----

document.addEventListener('DOMContentLoaded', () => {
  setUpUpload();
  $('#sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('#key').value.trim());
    $('#key').value = '';
  });
  $('#sign-out').addEventListener('click', () => {
    signOut();
    notice('Signed out.');
  });
  $('#search-form').addEventListener('submit', search);
  $('#queue').addEventListener('keydown', onQueueKey);
  $('#dlq-topic').addEventListener('change', loadLetters);
  $('#dlq-refresh').addEventListener('click', loadTopics);
  $('#select-all').addEventListener('change', (event) => {
    for (const box of document.querySelectorAll('#letters .pick:not(:disabled)')) box.checked = event.target.checked;
  });
  $('#replay-form').addEventListener('submit', replaySelected);
  window.addEventListener('hashchange', () => showScreen(location.hash.slice(1)));
  if (state.key) signIn(state.key);
  else showSection('signed-out');
});
