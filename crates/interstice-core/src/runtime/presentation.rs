//! What committed calls present, taken by the presenting plugins: the draw list, audio, watched
//! tables' changes and file watches; and the input state calls read.

use super::Modules;
use interstice_abi::draw::DrawCommand;
use interstice_abi::input::InputState;
use std::sync::Arc;

pub(super) fn encode_input_state(state: &InputState) -> Arc<[u8]> {
    // Plain strings, floats and vectors: postcard cannot fail on them.
    Arc::from(postcard::to_allocvec(state).unwrap_or_default())
}

impl Modules {
    /// The draw list of the last committed reducer call of the Gpu holder that drew, since
    /// the last take (`None`: nothing new; keep showing the previous frame).
    pub fn take_draw_list(&mut self) -> Option<(Arc<str>, Vec<DrawCommand>)> {
        self.presented.draw.take()
    }

    /// The samples the Audio holder's committed calls queued since the last take,
    /// interleaved in the channel count it was asked for.
    pub fn take_audio(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.presented.samples)
    }

    /// Records every committed change of `module.table` from now on, for
    /// [`take_table_changes`](Self::take_table_changes).
    pub fn watch_table(&mut self, module: &str, table: &str) {
        self.feed.watch(module, table);
    }

    /// Takes the watched tables' changes since the last call: one batch per committed
    /// transaction and module, oldest first.
    pub fn take_table_changes(&mut self) -> Vec<crate::feed::ChangeBatch> {
        self.feed.take()
    }

    /// Sets what the Input holder sees when it polls (`input_state`).
    pub fn set_input_state(&mut self, state: &InputState) {
        self.input_state = encode_input_state(state);
    }

    /// Takes the paths committed calls asked to watch (File authority): the module and the
    /// file or directory, inside the module's own directory.
    pub fn take_watch_requests(&mut self) -> Vec<(Arc<str>, std::path::PathBuf)> {
        std::mem::take(&mut self.watches)
    }

    /// The directory of a File holder's files (`<data>/files/<module>`), when the node keeps
    /// a data directory.
    pub fn files_dir_of(&self, module: &str) -> Option<std::path::PathBuf> {
        self.files_dir.as_ref().map(|d| d.join(module))
    }
}
