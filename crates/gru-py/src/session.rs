//! `gru_wgpu.Session`: many independent streams through one forward network, each fed a chunk
//! of frames at a time, their states kept between calls (on the GPU: resident in one buffer,
//! the library's `GruSession`; on the CPU path: host vectors through the reference forward).

use std::collections::HashMap;
use std::sync::Mutex;

use gru_wgpu::gpu::{Feed, GruSession, StreamId};
use gru_wgpu::{cpu, Direction, GruError, GruInput, GruModel};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::model::{Gru, Place};
use crate::{as_f32, as_i64, py_err, shape_text, to_numpy};

enum Streams {
    Gpu {
        session: Box<GruSession>,
        ids: HashMap<i64, StreamId>,
    },
    Cpu {
        model: GruModel,
        capacity: usize,
        states: HashMap<i64, Vec<f32>>,
    },
}

struct Inner {
    streams: Streams,
    next_id: i64,
}

/// Independent streams through one forward GRU (any number of layers), each advanced a chunk
/// at a time with its state kept between calls: `session = model.session(streams=256)`.
///
/// Shapes with `L` layers, `H` units and `I` inputs: a stream's state is `[L, H]`; `feed`
/// takes `frames [k, C, I]` for `k` streams and `C` steps and returns `[k, C, H]`, the last
/// layer's output at every step. Methods release the GIL while the device works; one session
/// serves one call at a time (others wait), and separate sessions run side by side.
#[pyclass(name = "Session", module = "gru_wgpu")]
pub struct Session {
    inner: Mutex<Inner>,
    layers: usize,
    hidden: usize,
    input: usize,
}

fn poisoned() -> PyErr {
    PyRuntimeError::new_err("the session is unusable: a previous call panicked")
}

impl Session {
    pub(crate) fn new(py: Python<'_>, model: &Gru, capacity: usize) -> PyResult<Session> {
        let m = &model.model;
        if m.direction() != Direction::Forward {
            return Err(PyValueError::new_err(format!(
                "session: expected a forward network (a stream's future is not known when it \
                 is fed), got {:?}",
                m.direction()
            )));
        }
        if capacity == 0 {
            return Err(PyValueError::new_err(
                "session: expected streams ≥ 1, got 0",
            ));
        }
        let streams = match &model.place {
            Place::Gpu { gru, .. } => {
                // The session reads the model's weights where they are (no second upload);
                // the model's lock is taken with the GIL released, as everywhere.
                let session = py.detach(|| match gru.lock() {
                    Ok(g) => GruSession::new(g.share(), capacity).map_err(py_err),
                    Err(_) => Err(PyRuntimeError::new_err(
                        "the model is unusable: a previous call panicked while holding it",
                    )),
                })?;
                Streams::Gpu {
                    session: Box::new(session),
                    ids: HashMap::new(),
                }
            }
            Place::Cpu { model } => Streams::Cpu {
                model: model.clone(),
                capacity,
                states: HashMap::new(),
            },
        };
        Ok(Session {
            inner: Mutex::new(Inner {
                streams,
                next_id: 0,
            }),
            layers: m.num_layers(),
            hidden: m.hidden_size(),
            input: m.input_size(),
        })
    }

    /// Runs `f` on the session's state with the GIL released: the lock is taken (and waited
    /// for) only outside the GIL, so a thread holding it can always get the GIL back.
    fn locked<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Inner) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut inner = self.inner.lock().map_err(|_| poisoned())?;
            f(&mut inner)
        })
    }

    fn state_arg(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
        let a = as_f32(py, state, "state")?;
        let (l, h) = (self.layers, self.hidden);
        let ok = a.shape() == [l, h] || (l == 1 && a.shape() == [h]);
        if !ok {
            return Err(PyValueError::new_err(format!(
                "state: expected [L={l}, H={h}], got {}",
                shape_text(a.shape())
            )));
        }
        let v = a.readonly().as_slice()?.to_vec();
        Ok(v)
    }
}

fn unknown(id: i64) -> PyErr {
    PyValueError::new_err(format!(
        "stream {id}: expected an open stream of this session, got one that is closed or \
         unknown"
    ))
}

#[pymethods]
impl Session {
    /// Opens a stream from `state` (`[L, H]`) or zeros and returns its id (an int).
    /// `ValueError` when every slot is open.
    #[pyo3(signature = (state=None))]
    fn open(&self, py: Python<'_>, state: Option<&Bound<'_, PyAny>>) -> PyResult<i64> {
        let state = match state {
            Some(s) if !s.is_none() => Some(self.state_arg(py, s)?),
            _ => None,
        };
        let zeros = vec![0.0; self.layers * self.hidden];
        self.locked(py, move |inner| {
            let id = inner.next_id;
            match &mut inner.streams {
                Streams::Gpu { session, ids } => {
                    let sid = match &state {
                        Some(s) => session.open_with_state(s),
                        None => session.open(),
                    }
                    .map_err(py_err)?;
                    ids.insert(id, sid);
                }
                Streams::Cpu {
                    capacity, states, ..
                } => {
                    if states.len() >= *capacity {
                        return Err(PyValueError::new_err(format!(
                            "open: expected a free slot, got all {capacity} streams open"
                        )));
                    }
                    states.insert(id, state.unwrap_or(zeros));
                }
            }
            inner.next_id += 1;
            Ok(id)
        })
    }

    /// Advances the streams `ids` (`k` distinct open ids) by `C` steps of `frames [k, C, I]`
    /// (`[k, I]` for one step), or stream `i` by `lengths[i]` (in `1..=C`) of them, in one
    /// batched forward. Returns the last layer's outputs `[k, C, H]` (`[k, H]` for `[k, I]`
    /// frames; zero past a stream's length). A failed feed leaves every state as it was.
    #[pyo3(signature = (ids, frames, lengths=None))]
    fn feed<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        frames: &Bound<'py, PyAny>,
        lengths: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids: Vec<i64> = as_i64(py, ids, "ids")?;
        let fa = as_f32(py, frames, "frames")?;
        let (k, i, h) = (ids.len(), self.input, self.hidden);
        let (c, one_step) = match *fa.shape() {
            [kk, ii] if kk == k && ii == i => (1, true),
            [kk, cc, ii] if kk == k && ii == i && cc > 0 => (cc, false),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "frames: expected [k={k}, C, I={i}] or [k={k}, I={i}] (k = len(ids)), got {}",
                    shape_text(fa.shape())
                )))
            }
        };
        let lens: Option<Vec<usize>> = match lengths {
            Some(o) if !o.is_none() => {
                let l = as_i64(py, o, "lengths")?;
                if l.len() != k {
                    return Err(PyValueError::new_err(format!(
                        "lengths: expected [k={k}] values, got {}",
                        l.len()
                    )));
                }
                if let Some(p) = l.iter().position(|&v| v < 1 || v as usize > c) {
                    return Err(PyValueError::new_err(format!(
                        "lengths[{p}]: expected a value in 1..={c}, got {}",
                        l[p]
                    )));
                }
                Some(l.into_iter().map(|v| v as usize).collect())
            }
            _ => None,
        };
        for (p, id) in ids.iter().enumerate() {
            if ids[..p].contains(id) {
                return Err(PyValueError::new_err(format!(
                    "ids: expected distinct streams, got stream {id} twice"
                )));
            }
        }
        let fr = fa.readonly();
        let x = fr.as_slice()?;
        let y = self.locked(py, |inner| match &mut inner.streams {
            Streams::Gpu { session, ids: map } => {
                let sids = ids
                    .iter()
                    .map(|id| map.get(id).copied().ok_or_else(|| unknown(*id)))
                    .collect::<PyResult<Vec<StreamId>>>()?;
                let mut feed = Feed::new(&sids, x, c);
                if let Some(l) = &lens {
                    feed = feed.with_lengths(l);
                }
                session.feed(&feed).map_err(py_err)
            }
            Streams::Cpu { model, states, .. } => {
                let olds = ids
                    .iter()
                    .map(|id| states.get(id).ok_or_else(|| unknown(*id)))
                    .collect::<PyResult<Vec<&Vec<f32>>>>()?;
                // Every stream is computed before any state changes (a failure changes none).
                let results = (0..k)
                    .map(|s| {
                        let len = lens.as_ref().map_or(c, |l| l[s]) as i64;
                        let lens = [len];
                        let input = GruInput::new(&x[s * c * i..][..c * i], c, 1)
                            .with_initial_h(olds[s])
                            .with_sequence_lens(&lens);
                        cpu::forward_model(model, &input)
                    })
                    .collect::<Result<Vec<_>, GruError>>()
                    .map_err(py_err)?;
                let mut y = Vec::with_capacity(k * c * h);
                for (id, out) in ids.iter().zip(results) {
                    y.extend_from_slice(&out.y);
                    states.insert(*id, out.y_h);
                }
                Ok(y)
            }
        })?;
        let shape = if one_step { vec![k, h] } else { vec![k, c, h] };
        to_numpy(py, y, &shape)
    }

    /// Stream `id`'s state, `[L, H]` (waits for the feeds before it).
    fn state<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyAny>> {
        let v = self.locked(py, |inner| match &mut inner.streams {
            Streams::Gpu { session, ids } => {
                let sid = *ids.get(&id).ok_or_else(|| unknown(id))?;
                session.read_state(sid).map_err(py_err)
            }
            Streams::Cpu { states, .. } => Ok(states.get(&id).ok_or_else(|| unknown(id))?.clone()),
        })?;
        to_numpy(py, v, &[self.layers, self.hidden])
    }

    /// Sets stream `id`'s state to `state` (`[L, H]`), e.g. to resume a saved conversation.
    fn set_state(&self, py: Python<'_>, id: i64, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.state_arg(py, state)?;
        self.locked(py, move |inner| match &mut inner.streams {
            Streams::Gpu { session, ids } => {
                let sid = *ids.get(&id).ok_or_else(|| unknown(id))?;
                session.set_state(sid, &v).map_err(py_err)
            }
            Streams::Cpu { states, .. } => {
                *states.get_mut(&id).ok_or_else(|| unknown(id))? = v;
                Ok(())
            }
        })
    }

    /// Sets stream `id`'s state to zeros, as if newly opened.
    fn reset(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        let zeros = vec![0.0f32; self.layers * self.hidden];
        self.locked(py, move |inner| match &mut inner.streams {
            Streams::Gpu { session, ids } => {
                let sid = *ids.get(&id).ok_or_else(|| unknown(id))?;
                session.reset(sid).map_err(py_err)
            }
            Streams::Cpu { states, .. } => {
                *states.get_mut(&id).ok_or_else(|| unknown(id))? = zeros;
                Ok(())
            }
        })
    }

    /// Closes stream `id`; its id is refused from now on and its slot may be reused.
    fn close(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        self.locked(py, |inner| match &mut inner.streams {
            Streams::Gpu { session, ids } => {
                let sid = ids.remove(&id).ok_or_else(|| unknown(id))?;
                session.close(sid).map_err(py_err)
            }
            Streams::Cpu { states, .. } => {
                states.remove(&id).map(|_| ()).ok_or_else(|| unknown(id))
            }
        })
    }

    /// The number of slots.
    #[getter]
    fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
        self.locked(py, |inner| {
            Ok(match &inner.streams {
                Streams::Gpu { session, .. } => session.capacity(),
                Streams::Cpu { capacity, .. } => *capacity,
            })
        })
    }

    /// The number of open streams.
    #[getter]
    fn open_streams(&self, py: Python<'_>) -> PyResult<usize> {
        self.locked(py, |inner| {
            Ok(match &inner.streams {
                Streams::Gpu { session, .. } => session.open_streams(),
                Streams::Cpu { states, .. } => states.len(),
            })
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (cap, open) = (
            self.capacity(py).unwrap_or(0),
            self.open_streams(py).unwrap_or(0),
        );
        format!(
            "Session(streams={cap}, open={open}, layers={}, hidden={})",
            self.layers, self.hidden
        )
    }
}
