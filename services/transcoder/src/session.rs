//! A transcode session on a thread of its own.
//!
//! [`TranscodeSession`] holds FFmpeg contexts that must stay on one thread and transcoding is
//! CPU-bound, so each session lives on a dedicated OS thread fed through a channel; the async
//! side awaits each segment's reply. Dropping the handle ends the thread and frees the session
//! (and its GPU lease).

use std::sync::mpsc;

use livefarm_media::{
    EncoderSettings, GpuPool, MediaError, SegmentError, SegmentInput, SegmentOutput, SessionConfig,
    TranscodeSession,
};
use livefarm_profiles::Profile;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<SegmentOutput, SegmentError>>;

/// The async handle of one session thread.
pub(crate) struct SessionHandle {
    inbox: mpsc::Sender<(SegmentInput, Reply)>,
    profiles: Vec<Profile>,
    gpu: Option<u32>,
}

impl SessionHandle {
    /// Places a session (GPU or CPU, as `pool` decides) and starts its thread.
    pub(crate) async fn start(
        stream_id: &str,
        profiles: Vec<Profile>,
        settings: EncoderSettings,
        pool: &GpuPool,
    ) -> Result<Self, MediaError> {
        let lease = pool.acquire()?;
        let gpu = lease.plan.gpu();
        let config = SessionConfig {
            profiles: profiles.clone(),
            settings,
        };
        let (inbox, jobs) = mpsc::channel::<(SegmentInput, Reply)>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), MediaError>>();
        std::thread::Builder::new()
            .name(format!("session-{stream_id}"))
            .spawn(move || {
                let mut session = match TranscodeSession::new(config, Some(lease)) {
                    Ok(session) => {
                        let _ = ready_tx.send(Ok(()));
                        session
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                // ends when the handle (the only sender) is dropped
                while let Ok((input, reply)) = jobs.recv() {
                    let _ = reply.send(session.transcode(input));
                }
            })
            .map_err(|e| MediaError::Init(format!("cannot start session thread: {e}")))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Self {
                inbox,
                profiles,
                gpu,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(MediaError::Init(
                "session thread ended while starting".to_owned(),
            )),
        }
    }

    /// Transcodes one segment on the session's thread.
    pub(crate) async fn transcode(
        &self,
        input: SegmentInput,
    ) -> Result<SegmentOutput, SegmentError> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send((input, reply))
            .map_err(|_| SegmentError::SessionClosed)?;
        answer.await.map_err(|_| SegmentError::SessionClosed)?
    }

    /// The ladder the session was built for.
    pub(crate) fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The GPU it runs on, if any.
    pub(crate) fn gpu(&self) -> Option<u32> {
        self.gpu
    }
}
