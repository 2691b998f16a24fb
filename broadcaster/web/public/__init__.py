"""The villagers' side: a public, read-only face on the audio listener (docs/villagers.md).

- Listen again: `/nghe-lai` (the commune), `/nghe-lai/{village}`, `/tin/{id}`: what actually aired
  lately (services/listen.py), phone-first, with the audio playing in the page; and a podcast feed per
  commune and per village (`podcast.xml`, RSS 2.0 with enclosures and iTunes tags).
- Say what you heard: `/y-kien/{thon|loa}/{id}/{token}`, the form behind a village's or a speaker's
  QR code (services/feedback.py), whose POST is the one write this face accepts.

It is mounted by `api.app.create_audio_app` beside the audio files devices fetch, never on the API's
app: nothing here imports a route of the API or the desk, there is no sign-in, no cookie is read or
set, and the only service that writes is `submit_feedback` (tests/broadcaster/web/test_public_readonly.py
asks every state-changing path of the API and the desk of this listener, and gets 404 or 405).
Pages carry no script at all (CSP `script-src 'none'`), are cacheable (ETag, Last-Modified,
Cache-Control: public) and weigh a few kB without their audio.
"""

from broadcaster.web.public.routes import mount_public

__all__ = ["mount_public"]
