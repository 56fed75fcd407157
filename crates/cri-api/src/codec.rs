//! The codec of both CRI services: prost's, except that a message that cannot be decoded is
//! the sender's fault and is reported as `InvalidArgument` (prost's codec says `Internal`),
//! and that a message is encoded into a buffer sized for it up front: prost's encoder grows
//! tonic's 8 KiB buffer by doubling, so a 250 KB ListContainers reply was copied through
//! five reallocations, each into fresh pages.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with undecodable messages answered `InvalidArgument`.
#[derive(Debug, Clone, Copy)]
pub struct CriCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CriCodec<T, U> {
    fn default() -> Self {
        CriCodec(PhantomData)
    }
}

impl<T, U> Codec for CriCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = CriEncoder<T>;
    type Decoder = CriDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        CriEncoder(ProstCodec::<T, U>::default().encoder())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CriDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// Encodes with prost into a buffer reserved for the whole message.
#[derive(Debug)]
pub struct CriEncoder<T>(ProstEncoder<T>);

impl<T: Message> Encoder for CriEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        self.0.encode(item, buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// Decodes with prost; a decoding failure becomes `InvalidArgument`.
#[derive(Debug)]
pub struct CriDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for CriDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!("cannot decode the message: {}", status.message()))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
