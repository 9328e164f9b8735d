//! The waiting thread behind the async API on native targets.
//!
//! Something has to poll a native device before a `map_async` callback runs. The blocking
//! API polls on the calling thread; the async API must leave its executor free, so each
//! context keeps one thread that waits for the submissions it is handed, in order, for as
//! long as any clone of the context lives (a thread per call would cost a spawn each).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

type Slot = Option<mpsc::Sender<wgpu::SubmissionIndex>>;

/// Shared by every clone of a context; started on the first async readback.
#[derive(Clone, Default)]
pub(crate) struct Poller {
    sender: Arc<Mutex<Slot>>,
    /// Threads started so far (one, unless one ended).
    spawned: Arc<AtomicUsize>,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Poller")
    }
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Poller {
    /// Has the context's thread wait for `submission` (which makes wgpu run the callbacks
    /// of everything that finished by then) and returns at once. The thread is started on
    /// first use and again if it ever ended (a panic inside wgpu); it ends when the last
    /// clone of the context is dropped. A failed wait (a lost device) fails or drops the
    /// map callbacks, which their receivers report.
    pub(crate) fn wait_for(
        &self,
        device: &wgpu::Device,
        submission: wgpu::SubmissionIndex,
    ) -> std::io::Result<()> {
        let mut slot = lock(&self.sender);
        let submission = match slot.as_ref() {
            Some(sender) => match sender.send(submission) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(back)) => back,
            },
            None => submission,
        };
        let (sender, receiver) = mpsc::channel::<wgpu::SubmissionIndex>();
        let device = device.clone();
        std::thread::Builder::new()
            .name("gru-wgpu poll".into())
            .spawn(move || {
                while let Ok(index) = receiver.recv() {
                    let _ = device.poll(wgpu::PollType::Wait {
                        submission_index: Some(index),
                        timeout: None,
                    });
                }
            })?;
        self.spawned.fetch_add(1, Ordering::Relaxed);
        sender
            .send(submission)
            .map_err(|_| std::io::Error::other("the poll thread ended at once"))?;
        *slot = Some(sender);
        Ok(())
    }

    /// How many waiting threads this context has started (tests).
    #[cfg(test)]
    pub(crate) fn spawned(&self) -> usize {
        self.spawned.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use crate::gpu::context::test_context;
    use crate::gpu::GpuGru;
    use crate::{cpu, GruInput, GruModel, Tolerance};

    /// Many async forwards on one context (and on a clone of it) share one waiting thread,
    /// started by the first, and every result equals the CPU reference; a blocking forward
    /// (which polls on its own thread) starts none.
    #[test]
    fn async_readbacks_share_one_waiting_thread_per_context() {
        let Some(ctx) = test_context("async_readbacks_share_one_waiting_thread_per_context") else {
            return;
        };
        let (i, h, t, b) = (3, 5, 4, 2);
        let value = |n: usize| ((n * 7919) % 13) as f32 / 13.0 - 0.5;
        let w = crate::weights::GruWeights::new(
            crate::weights::Convention::ResetAfter,
            i,
            h,
            (0..3 * h * i).map(value).collect(),
            (0..3 * h * h).map(value).collect(),
            None,
        )
        .expect("valid weights");
        let model = GruModel::single(w);
        let x: Vec<f32> = (0..t * b * i)
            .map(|k| ((k * 37 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let input = GruInput::new(&x, t, b);
        let expected = cpu::forward_model(&model, &input).expect("reference");
        let mut gpu = GpuGru::from_model(&ctx, &model).expect("upload");
        let blocking = gpu.forward(&input).expect("blocking forward");
        assert_eq!(ctx.poller.spawned(), 0, "a blocking forward polls inline");
        let c = Tolerance::F32.compare(&blocking.y, &expected.y);
        assert!(c.passed(), "blocking: {c}");
        for call in 0..6 {
            let got = pollster::block_on(gpu.forward_async(&input)).expect("async forward");
            let c = Tolerance::F32.compare(&got.y, &expected.y);
            assert!(c.passed(), "async call {call}: {c}");
        }
        let clone = ctx.clone();
        let mut other = GpuGru::from_model(&clone, &model).expect("upload");
        let got = pollster::block_on(other.forward_async(&input)).expect("async forward");
        assert_eq!(got.y, blocking.y);
        assert_eq!(
            ctx.poller.spawned(),
            1,
            "one waiting thread for the context and its clones"
        );
    }
}
