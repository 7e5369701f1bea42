//! Writing a message into the spool: the `-D` file streamed as it
//! arrives, then both files synced and published under their final names.

use super::*;

impl Spool {
    /// Starts the `-D` file of a new message under its temporary name, with
    /// its id line written; write the body into it (it implements
    /// [`Write`], buffered), then hand it to [`Spool::write_data`] or
    /// [`crate::SpoolWriter::write_data`]. Dropped unused, it removes itself.
    /// This lets a receiver stream a large body to disk as it arrives.
    pub fn create_data(&self, id: &MessageId) -> Result<DataFile> {
        if self.header_path(id).exists() {
            return Err(SpoolError::Exists(*id));
        }
        let path = self.input.join(format!("{TMP_PREFIX}{id}-D"));
        let file = create_file(&path)?;
        let mut d = DataFile {
            id: *id,
            out: Some(io::BufWriter::with_capacity(64 * 1024, file)),
            path,
            body_len: 0,
        };
        let id_line = format!("{id}-D\n");
        d.writer()?
            .write_all(id_line.as_bytes())
            .map_err(SpoolError::io("write", &d.path))?;
        Ok(d)
    }

    /// Writes the `-H` file under its temporary name next to a finished
    /// `-D` file (no fsync yet).
    pub(crate) fn prepare_data(
        &self,
        env: &Envelope,
        headers: &[Header],
        mut data: DataFile,
    ) -> Result<Prepared> {
        let id = env.id;
        if data.id != id {
            return Err(SpoolError::IdMismatch {
                path: data.path.clone(),
                expected: id,
                found: data.id,
            });
        }
        let data_file = data.finish()?;
        let data_tmp = std::mem::take(&mut data.path);
        let header_tmp = self.input.join(format!("{TMP_PREFIX}{id}-H"));
        let header_final = self.header_path(&id);
        if header_final.exists() {
            let _ = fs::remove_file(&data_tmp);
            return Err(SpoolError::Exists(id));
        }
        let header = match create_file(&header_tmp) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&data_tmp);
                return Err(e);
            }
        };
        // From here on, Prepared's Drop cleans up both temp files on error.
        let mut p = Prepared {
            id,
            data_tmp,
            header_tmp,
            data: data_file,
            header,
            data_final: self.data_path(&id),
            header_final,
            published: false,
        };
        let h = format_header(env, headers);
        p.header
            .write_all(&h)
            .map_err(SpoolError::io("write", &p.header_tmp))?;
        Ok(p)
    }

    /// Writes both files under temporary names (no fsync yet).
    pub(crate) fn prepare(
        &self,
        env: &Envelope,
        headers: &[Header],
        body: &mut dyn Read,
    ) -> Result<Prepared> {
        let mut data = self.create_data(&env.id)?;
        io::copy(body, &mut data).map_err(SpoolError::io("write", &data.path))?;
        self.prepare_data(env, headers, data)
    }

    /// [`Spool::write`] with a body already streamed into a [`DataFile`].
    pub fn write_data(&self, env: &Envelope, headers: &[Header], data: DataFile) -> Result<()> {
        let p = self.prepare_data(env, headers, data)?;
        p.start_writeback();
        p.sync()?;
        p.publish()?;
        self.sync_input_dir()
    }

    /// fsyncs `input/`, making renames and removals in it durable.
    pub fn sync_input_dir(&self) -> Result<()> {
        fsync_dir(&self.input)
    }

    /// Writes a new message durably: `-D` and `-H` to temporary names,
    /// fdatasync both, rename `-D` then `-H` into place (the `-H` file's
    /// presence makes the message exist), fsync `input/`. Only then returns
    /// `Ok`, so the caller may acknowledge the message (SMTP 250).
    ///
    /// `body` is the message body in Exim's `-D` form (lines end in `\n`, no
    /// dot-stuffing). On error nothing is left behind under a message name.
    /// For many concurrent writers use [`crate::SpoolWriter`], which shares
    /// the fsyncs.
    pub fn write(&self, env: &Envelope, headers: &[Header], body: &mut dyn Read) -> Result<()> {
        let p = self.prepare(env, headers, body)?;
        p.start_writeback();
        p.sync()?;
        p.publish()?;
        self.sync_input_dir()
    }

    /// [`Spool::write`] with the body in memory.
    pub fn write_bytes(&self, env: &Envelope, headers: &[Header], body: &[u8]) -> Result<()> {
        let mut body = body;
        self.write(env, headers, &mut body)
    }
}
